"""The word-level schema every data source returns (that of the hub's nielsr/funsd-layoutlmv3).

The tag names are the source's: FUNSD's below, or any other BIO set (distill.labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets

from distill.labels import LabelSet

# FUNSD's tags, in the order its hub copy declares (a FUNSD reader's labels, nothing more general).
LABELS: list[str] = ["O", "B-HEADER", "I-HEADER", "B-QUESTION", "I-QUESTION", "B-ANSWER", "I-ANSWER"]
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
ENTITY_TYPES: list[str] = ["HEADER", "QUESTION", "ANSWER"]
FUNSD_LABELS = LabelSet(tuple(ENTITY_TYPES))  # its tags are LABELS

# FUNSD's segment labels -> the entity type of the B-/I- tags ("other" becomes O).
SEGMENT_LABEL_TO_TYPE: dict[str, str | None] = {
    "header": "HEADER",
    "question": "QUESTION",
    "answer": "ANSWER",
    "other": None,
}


def features(tags: Sequence[str] = LABELS) -> datasets.Features:
    """The columns and types of every split of every source; `tags` names the ner_tags classes."""
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "bboxes": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(tags))),
            "image": datasets.Image(),
        }
    )


def segment_tags(label: str, n_words: int) -> list[int]:
    """B- on a segment's first word, I- on the rest; O for every word of an `other` segment."""
    entity = SEGMENT_LABEL_TO_TYPE[label]
    if entity is None:
        return [LABEL2ID["O"]] * n_words
    return [LABEL2ID[f"B-{entity}"]] + [LABEL2ID[f"I-{entity}"]] * (n_words - 1)
