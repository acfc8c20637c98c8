"""The run's label set: entity types from the data (or `--labels`), BIO tags built from them.

Every source hands over a DatasetDict whose `ner_tags` ClassLabel names its tags. A source that
declares an order keeps it (FUNSD: HEADER, QUESTION, ANSWER, so FUNSD runs score and save exactly
as before); readers of user data collect the types of their training split, sorted. The run then
fixes one `LabelSet`: written to config.toml (`labels`), every model's id2label, metrics.json, and
read back by export, the bench and `Predictor`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import datasets

from distill.errors import DistillError

OUTSIDE = "O"
PREFIXES = ("B-", "I-")


@dataclass(frozen=True)
class LabelSet:
    """Entity types in a fixed order; tags are O, then B-/I- of each type in that order."""

    types: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.types:
            raise DistillError("empty label set: the training data has no entity (every word is O)")
        for name in self.types:
            check_type_name(name)
        if len(set(self.types)) != len(self.types):
            raise DistillError(f"duplicate entity type in the label set {list(self.types)}")

    @property
    def tags(self) -> list[str]:
        return [OUTSIDE] + [f"{p}{t}" for t in self.types for p in PREFIXES]

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.tags))

    @property
    def label2id(self) -> dict[str, int]:
        return {tag: i for i, tag in enumerate(self.tags)}

    def model_kwargs(self) -> dict[str, Any]:
        """What a model config needs to carry these labels (num_labels, id2label, label2id)."""
        return {"num_labels": len(self.tags), "id2label": self.id2label, "label2id": self.label2id}

    def option(self) -> str:
        """The `--labels` value that fixes this set (what config.toml records)."""
        return ",".join(self.types)

    @classmethod
    def parse(cls, option: str) -> LabelSet:
        """`--labels A,B,C`: entity types, in this order."""
        types = tuple(t.strip() for t in option.split(","))
        if not any(types):
            raise DistillError("--labels is empty: give entity types, e.g. --labels HEADER,QUESTION,ANSWER")
        return cls(types)

    @classmethod
    def from_tags(cls, tags: Sequence[str], origin: str = "") -> LabelSet:
        """Types in order of first appearance in BIO tag names (a ClassLabel's or a model's id2label)."""
        types: list[str] = []
        for tag in tags:
            entity = tag_type(tag, origin)
            if entity is not None and entity not in types:
                types.append(entity)
        return cls(tuple(types))

    @classmethod
    def from_id2label(cls, id2label: Mapping[Any, str], origin: str = "") -> LabelSet:
        return cls.from_tags([id2label[k] for k in sorted(id2label, key=int)], origin)


def check_type_name(name: str) -> str:
    """Any non-empty name without a comma (dots welcome: CORD's menu.nm); not O, not a BIO tag."""
    if not name or name != name.strip() or "," in name or name == OUTSIDE or name.startswith(PREFIXES):
        raise DistillError(
            f"invalid entity type {name!r}: a non-empty name without commas or surrounding spaces, "
            "not 'O' and not itself a B-/I- tag"
        )
    return name


def tag_type(tag: str, origin: str = "") -> str | None:
    """The entity type of a BIO tag (None for O); anything else is refused, naming the source."""
    if tag == OUTSIDE:
        return None
    if isinstance(tag, str) and tag.startswith(PREFIXES) and len(tag) > 2:
        return tag[2:]
    where = f" in {origin}" if origin else ""
    raise DistillError(f"tag {tag!r}{where} is not a BIO tag (O, B-TYPE or I-TYPE)")


def tag_names(split: datasets.Dataset, origin: str = "") -> list[str]:
    """The tag names of a split's `ner_tags` ClassLabel; a plain integer column is refused."""
    feature = split.features.get("ner_tags")
    names = getattr(getattr(feature, "feature", None), "names", None)
    if not names:
        raise DistillError(f"{origin}: ner_tags must be a sequence of ClassLabel (tag names), got {feature}")
    return list(names)


def data_labels(data: datasets.DatasetDict) -> LabelSet:
    return LabelSet.from_tags(tag_names(data["train"], "the training split"), "the training split")


def tag_counts(split: datasets.Dataset) -> dict[int, int]:
    counts: dict[int, int] = {}
    for tags in split["ner_tags"]:
        for t in tags:
            counts[t] = counts.get(t, 0) + 1
    return counts


def used_types(split: datasets.Dataset) -> list[str]:
    """Entity types that occur in a split (not merely declared by its ClassLabel), in tag order."""
    names = tag_names(split)
    counts = tag_counts(split)
    found: list[str] = []
    for i, name in enumerate(names):
        entity = tag_type(name)
        if counts.get(i) and entity is not None and entity not in found:
            found.append(entity)
    return found


def forms_with(split: datasets.Dataset, types: Iterable[str], limit: int = 5) -> list[str]:
    """Ids of the first forms using any of `types` (to name them in an error)."""
    names = tag_names(split)
    wanted = {i for i, n in enumerate(names) if tag_type(n) in set(types)}
    found = [
        form_id for form_id, tags in zip(split["id"], split["ner_tags"], strict=True) if wanted & set(tags)
    ]
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


def check_test_in_train(data: datasets.DatasetDict) -> None:
    """A type the test split uses but training never shows cannot be learnt: refuse, naming it."""
    unseen = sorted(set(used_types(data["test"])) - set(used_types(data["train"])))
    if unseen:
        raise DistillError(
            f"label(s) {', '.join(unseen)} occur in the test split but never in training "
            f"(forms: {', '.join(forms_with(data['test'], unseen))}); add training examples or "
            "map them to other labels"
        )


def repair_bio(tags: Sequence[str]) -> tuple[list[str], int]:
    """I-X not preceded by B-X/I-X becomes B-X (how seqeval and conlleval read it too); returns the count."""
    out: list[str] = []
    repaired = 0
    previous = OUTSIDE
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
            repaired += 1
        out.append(tag)
        previous = tag
    return out, repaired


def relabel(data: datasets.DatasetDict, labels: LabelSet) -> tuple[datasets.DatasetDict, int]:
    """Every split's ner_tags re-expressed in `labels` (ids follow its order), I- without B- repaired.

    Returns the data and the number of repaired tags. Untouched (no map, same fingerprint) when
    the data already has these exact tags and consistent BIO, as FUNSD does.
    """
    out: dict[str, datasets.Dataset] = {}
    repaired = 0
    for split, dataset in data.items():
        names = tag_names(dataset, f"the {split} split")
        sequences = [[names[t] for t in tags] for tags in dataset["ner_tags"]]
        fixed = [repair_bio(seq) for seq in sequences]
        count = sum(n for _, n in fixed)
        repaired += count
        if names == labels.tags and count == 0:
            out[split] = dataset
            continue
        missing = sorted({tag for seq, _ in fixed for tag in seq} - set(labels.tags))
        if missing:
            raise DistillError(
                f"the {split} split has tag(s) {', '.join(missing)} outside the run's labels "
                f"({labels.option()}); list every type in --labels"
            )
        ids = [[labels.label2id[tag] for tag in seq] for seq, _ in fixed]
        feats = dataset.features.copy()
        feats["ner_tags"] = datasets.Sequence(datasets.ClassLabel(names=labels.tags))
        out[split] = dataset.map(
            lambda _, i, ids=ids: {"ner_tags": ids[i]},
            input_columns="ner_tags",
            with_indices=True,
            features=feats,
        )
    return datasets.DatasetDict(out), repaired


def resolve_labels(
    data: datasets.DatasetDict, option: str = ""
) -> tuple[datasets.DatasetDict, LabelSet, int]:
    """The run's labels: `option` (--labels) when given, else the data's; the data relabelled to them.

    Refuses a type the test split uses but training lacks, an unknown type in --labels and an
    empty set. Returns (data, labels, repaired I- tags).
    """
    declared = data_labels(data)
    if option:
        labels = LabelSet.parse(option)
        known = set(declared.types) | {t for s in data.values() for t in used_types(s)}
        unknown = [t for t in labels.types if t not in known]
        if unknown:
            raise DistillError(
                f"unknown label(s) in --labels: {', '.join(unknown)}; the data has {declared.option()}"
            )
    else:
        labels = declared
    check_test_in_train(data)
    data, repaired = relabel(data, labels)
    return data, labels, repaired


def check_model_labels(id2label: Mapping[Any, str], labels: LabelSet, where: object) -> None:
    """A model trained on other labels would mislabel every word: refuse, naming both sets."""
    model = [id2label[k] for k in sorted(id2label, key=int)]
    if model != labels.tags:
        raise DistillError(
            f"the model's labels {model} differ from the run's {labels.tags}; train it on this "
            "data or pass the matching --labels",
            where,
        )
