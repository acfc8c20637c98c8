"""The hub copy of FUNSD (nielsr/funsd-layoutlmv3), checked against the project's schema.

`datasets` 4 no longer runs loading scripts, and nielsr/funsd-layoutlmv3 is one. A script
dataset is read from the hub's parquet conversion (revision refs/convert/parquet) instead;
where the default dataset has none, the official FUNSD release archive is downloaded once
into the datasets cache and read by the local FUNSD reader, which gives the same forms.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import datasets
from datasets.utils.file_utils import cached_path, hash_url_to_filename

from distill.data.cord import cord_from_dataset, is_cord
from distill.data.funsd import SPLIT_DIRS, load_funsd_local
from distill.errors import DistillError
from distill.labels import LabelSet, tag_names
from distill.schema import features

DEFAULT_HUB_DATASET = "nielsr/funsd-layoutlmv3"
PARQUET_REVISION = "refs/convert/parquet"  # the hub's own parquet export of a dataset repository
FUNSD_RELEASE_URL = "https://guillaumejaume.github.io/FUNSD/dataset.zip"
FUNSD_RELEASE_URL_ENV = "DOCDISTILL_FUNSD_URL"  # another copy of the archive (a mirror, a local server)
CACHE_SUBDIR = "docdistill"
SPLITS = ("train", "test")
LOCAL_HINT = (
    "point at a local copy instead: --data PATH (a directory in the FUNSD release layout, "
    "training_data|testing_data/annotations/*.json + images/*.png) or --data synthetic (built-in forms)"
)


class ScriptWithoutParquet(Exception):
    """A loading-script dataset (which datasets 4 refuses) whose parquet conversion is unavailable."""


def load_hub(name: str = DEFAULT_HUB_DATASET) -> datasets.DatasetDict:
    """Download (or take from the local cache) a hub dataset with the FUNSD word-level schema.

    For the default dataset, the FUNSD release archive stands in when the hub has no loadable copy,
    or when the hub cannot be reached but the archive was downloaded before.
    """
    try:
        loaded = _load_dataset(name)
    except Exception as err:  # the hub client raises many types; sort them into clear messages
        if name == DEFAULT_HUB_DATASET and (isinstance(err, ScriptWithoutParquet) or _is_unreachable(err)):
            return _release_instead(name, err)
        raise _hub_error(name, err) from err
    if not isinstance(loaded, datasets.DatasetDict):
        raise DistillError(f"hub dataset {name} did not load as train/test splits")
    if is_cord(loaded):  # naver-clova-ix/cord-v2: JSON ground truth per receipt, not words and tags
        return cord_from_dataset(loaded, f"hub dataset {name}")
    return validate_splits(loaded, f"hub dataset {name}")


def _load_dataset(name: str) -> datasets.DatasetDict:
    """The dataset as datasets loads it; a script dataset from its parquet conversion."""
    try:
        return datasets.load_dataset(name)
    except RuntimeError as err:
        if not is_script_refusal(err):
            raise
    try:
        return datasets.load_dataset(name, revision=PARQUET_REVISION)
    except (FileNotFoundError, RuntimeError) as err:  # datasets' DatasetNotFoundError: no such revision
        if isinstance(err, RuntimeError) and not is_script_refusal(err):
            raise
        raise ScriptWithoutParquet(
            f"hub dataset {name} is a loading script, which datasets {datasets.__version__} no longer "
            f"runs, and has no parquet conversion ({PARQUET_REVISION}: {_short(err)})"
        ) from err


def is_script_refusal(err: BaseException) -> bool:
    """datasets >= 4 raises a plain RuntimeError for a dataset that is a loading script."""
    return isinstance(err, RuntimeError) and "Dataset scripts are no longer supported" in str(err)


def release_url() -> str:
    return os.environ.get(FUNSD_RELEASE_URL_ENV) or FUNSD_RELEASE_URL


def release_cache_dir() -> Path:
    return Path(datasets.config.HF_DATASETS_CACHE) / CACHE_SUBDIR


def load_funsd_release(url: str | None = None, cache_dir: str | Path | None = None) -> datasets.DatasetDict:
    """The official FUNSD release archive, downloaded once into the cache, read by the local reader.

    datasets' cached_path downloads under a temporary name and renames, and with use_etag off
    a cached archive is reused without touching the network (offline too); the archive is then
    extracted into a temporary directory renamed into place, so a half extraction is never read.
    """
    url = url or release_url()
    cache = Path(cache_dir) if cache_dir else release_cache_dir()
    config = datasets.DownloadConfig(cache_dir=cache, use_etag=False, disable_tqdm=True)
    archive = Path(cached_path(url, download_config=config))
    # Named by the URL, in the cache: a file:// archive is read where it is, never unpacked beside it.
    return load_funsd_local(
        release_root(_extracted(archive, cache / f"{hash_url_to_filename(url)}.extracted"))
    )


def _extracted(archive: Path, target: Path) -> Path:
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(tmp)
        os.replace(tmp, target)
    except zipfile.BadZipFile as err:
        raise DistillError(f"the FUNSD release archive is not a zip file: {err}", archive) from err
    except OSError:
        if not target.is_dir():  # else another process (a DDP rank) extracted it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def release_root(directory: Path) -> Path:
    """The directory inside an extracted archive that holds training_data and testing_data."""
    for candidate in sorted([directory, *(p for p in directory.rglob("*") if p.is_dir())]):
        if "__MACOSX" not in candidate.parts and all((candidate / d).is_dir() for d in SPLIT_DIRS.values()):
            return candidate
    raise DistillError("the FUNSD release archive holds no training_data and testing_data", directory)


def _release_instead(name: str, hub_err: Exception) -> datasets.DatasetDict:
    url = release_url()
    try:
        return load_funsd_release(url)
    except DistillError:
        raise
    except Exception as err:
        if _is_unreachable(hub_err):
            hub = f"could not reach the Hugging Face hub for {name} ({_short(hub_err)})"
        else:
            hub = str(hub_err)
        archive = "could not reach" if _is_unreachable(err) else "could not download"
        raise DistillError(
            f"{hub}; {archive} the FUNSD release archive {url} either ({_short(err)}); {LOCAL_HINT}"
        ) from err


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
    if isinstance(err, ScriptWithoutParquet):
        return DistillError(f"{err}; {LOCAL_HINT}")
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
