"""The hub copy of FUNSD (nielsr/funsd-layoutlmv3), checked against the project's schema."""

from __future__ import annotations

import datasets

from distill.data_cord import cord_from_dataset, is_cord
from distill.errors import DistillError
from distill.labels import LabelSet, tag_names
from distill.schema import features

DEFAULT_HUB_DATASET = "nielsr/funsd-layoutlmv3"
SPLITS = ("train", "test")
LOCAL_HINT = (
    "point at a local copy instead: --data PATH (a directory in the FUNSD release layout, "
    "training_data|testing_data/annotations/*.json + images/*.png) or --data synthetic (built-in forms)"
)


def load_hub(name: str = DEFAULT_HUB_DATASET) -> datasets.DatasetDict:
    """Download (or take from the local cache) a hub dataset with the FUNSD word-level schema."""
    try:
        loaded = datasets.load_dataset(name)
    except Exception as err:  # the hub client raises many types; sort them into two messages
        raise _hub_error(name, err) from err
    if not isinstance(loaded, datasets.DatasetDict):
        raise DistillError(f"hub dataset {name} did not load as train/test splits")
    if is_cord(loaded):  # naver-clova-ix/cord-v2: JSON ground truth per receipt, not words and tags
        return cord_from_dataset(loaded, f"hub dataset {name}")
    return validate_splits(loaded, f"hub dataset {name}")


def validate_splits(data: datasets.DatasetDict, origin: str) -> datasets.DatasetDict:
    """The train and test splits, reduced to the schema's columns and cast to its types.

    Fails with a DistillError naming the origin when a split or column is missing, a tag name
    is not BIO, or the splits' tag names differ (a cast would keep the integers and silently
    relabel them). Any label set is welcome: the names come from the training split's feature.
    """
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise DistillError(f"{origin} has no {' or '.join(missing)} split (has: {', '.join(data)})")
    names = tag_names(data["train"], f"{origin} split train")
    LabelSet.from_tags(names, f"{origin} split train")  # every name a BIO tag, at least one type
    expected = features(names)
    result = {}
    for split in SPLITS:
        dataset = data[split]
        if "image" not in dataset.column_names:  # images are optional: text and layout students need none
            dataset = dataset.add_column("image", [None] * len(dataset))
        absent = [c for c in expected if c not in dataset.column_names]
        if absent:
            raise DistillError(f"{origin} split {split} lacks column(s) {', '.join(absent)}")
        _check_tag_names(dataset, origin, split, names)
        dataset = dataset.select_columns(list(expected))
        try:
            result[split] = dataset.cast(expected) if dataset.features != expected else dataset
        except (TypeError, ValueError) as err:
            raise DistillError(f"{origin} split {split} does not fit the FUNSD schema: {err}") from err
    return datasets.DatasetDict(result)


def _check_tag_names(dataset: datasets.Dataset, origin: str, split: str, expected: list[str]) -> None:
    feature = dataset.features["ner_tags"]
    inner = getattr(feature, "feature", None)
    names = getattr(inner, "names", None)
    if names != expected:
        raise DistillError(f"{origin} split {split}: ner_tags must be ClassLabel{expected}, got {feature}")


def _hub_error(name: str, err: Exception) -> DistillError:
    if _is_unreachable(err):
        return DistillError(f"could not reach the Hugging Face hub for {name} ({_short(err)}); {LOCAL_HINT}")
    if isinstance(err, FileNotFoundError):  # datasets' DatasetNotFoundError among them
        return DistillError(f"no dataset {name} on the Hugging Face hub ({_short(err)}); {LOCAL_HINT}")
    return DistillError(f"could not load hub dataset {name}: {_short(err)}")


def _is_unreachable(err: BaseException) -> bool:
    """Offline mode, no network, DNS or timeout: anywhere in the exception chain."""
    seen: BaseException | None = err
    while seen is not None:
        kind = type(seen).__name__
        if isinstance(seen, ConnectionError | TimeoutError) or kind in _UNREACHABLE_NAMES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# requests, httpx and urllib3 each have their own network errors; matching by name avoids
# importing (and depending on) whichever the installed hub client happens to use.
_UNREACHABLE_NAMES = {
    "OfflineModeIsEnabled",
    "ConnectionError",  # requests' own, not a subclass of the builtin
    "Timeout",
    "LocalEntryNotFoundError",
    "ConnectTimeout",
    "ReadTimeout",
    "ConnectError",
    "MaxRetryError",
    "NameResolutionError",
    "NewConnectionError",
}


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
