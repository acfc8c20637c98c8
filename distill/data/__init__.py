"""The data layer: one entry point (`load_source`) for every source, one module per source.

May import the core only; `run_data.py` rebuilds a run's forms from its config for every stage.

`--data` names a hub id (FUNSD's, CORD v2, any ClassLabel dataset), a local directory (the FUNSD
release, your own documents in its annotation layout, a save_to_disk or parquet copy),
`synthetic` or `synthetic-receipts`; each module below returns the same word-level schema:

  funsd.py       the official FUNSD release layout        hub.py         hub datasets (+ FUNSD's archive)
  custom.py      your own FUNSD-layout documents, labels   classlabel.py  datasets with a ClassLabel ner_tags
  cord.py        the CORD v2 receipts release              synthetic.py   the offline form generator
  receipts.py    the offline receipt generator
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import datasets

from distill.commands import shown_path
from distill.data.classlabel import is_dataset_dir, load_dataset_dir
from distill.data.custom import is_funsd_release, load_custom_local
from distill.data.funsd import load_funsd_local
from distill.data.hub import DEFAULT_HUB_DATASET, load_hub
from distill.data.receipts import make_receipts
from distill.data.synthetic import make_synthetic
from distill.errors import DistillError

SYNTHETIC = "synthetic"
RECEIPTS = "synthetic-receipts"  # the generator's receipt mode: CORD-like labels, a second label set
DEFAULT_SOURCE = DEFAULT_HUB_DATASET
DEFAULT_SYNTHETIC_FORMS = 64  # 48 train + 16 test
DEFAULT_MAX_WORDS = 120

SourceKind = Literal["synthetic", "receipts", "local", "hub"]

# owner/name as the hub spells it; anything else with a path separator is a path.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")


def source_kind(source: str) -> SourceKind:
    """Which loader a --data value goes to.

    `synthetic` is the generator; an existing path, or anything that looks like a path
    (starts with . / ~, or has a separator and is not owner/name), is a FUNSD release
    directory; everything else is a hub id. A local directory named like a hub id wins.
    """
    if not source or not source.strip():
        raise DistillError("empty data source: give a hub id, a FUNSD release directory or 'synthetic'")
    if source == SYNTHETIC:
        return "synthetic"
    if source == RECEIPTS:
        return "receipts"
    if Path(source).expanduser().exists() or _looks_like_path(source):
        return "local"
    return "hub"


def _looks_like_path(source: str) -> bool:
    if source.startswith((".", "/", "~")):
        return True
    if _HUB_ID.fullmatch(source):
        return False
    return any(sep and sep in source for sep in (os.sep, os.altsep))


def synthetic_split_sizes(total: int | None) -> tuple[int, int]:
    """Train/test forms for a total: a quarter for test (64 -> 48/16), at least one of each."""
    total = DEFAULT_SYNTHETIC_FORMS if total is None else total
    if total < 2:
        raise DistillError(f"synthetic data needs at least 2 forms (one train, one test), got {total}")
    test = max(1, round(total / 4))
    return total - test, test


def load_source(
    source: str,
    *,
    word_boxes: bool = False,
    synthetic_forms: int | None = None,
    max_words: int | None = None,
    seed: int = 0,
) -> datasets.DatasetDict:
    """The train/test DatasetDict of any source, in the hub schema.

    synthetic_forms, max_words and seed shape only the synthetic source; word_boxes
    applies to a FUNSD release and to synthetic forms (the hub copy has segment boxes only).
    """
    kind = source_kind(source)
    if kind == "synthetic":
        num_train, num_test = synthetic_split_sizes(synthetic_forms)
        words = DEFAULT_MAX_WORDS if max_words is None else max_words
        return make_synthetic(num_train, num_test, max_words=words, seed=seed, word_boxes=word_boxes)
    if kind == "receipts":
        return make_receipts(*synthetic_split_sizes(synthetic_forms), seed=seed)
    if kind == "local":
        return load_local(Path(source).expanduser(), word_boxes=word_boxes)
    if word_boxes:
        raise DistillError(
            f"word-level boxes need the FUNSD release files: the hub copy {source} has segment boxes only; "
            "use --data PATH to a FUNSD release directory"
        )
    return load_hub(source)


def load_local(path: Path, word_boxes: bool = False) -> datasets.DatasetDict:
    """A directory: a saved or parquet dataset (ClassLabel ner_tags, or CORD), a FUNSD release
    (FUNSD's labels, images) or the user's own FUNSD-layout data."""
    if is_dataset_dir(path):
        return load_dataset_dir(path)
    if not path.is_dir() or is_funsd_release(path):
        return load_funsd_local(path, word_boxes=word_boxes)  # also names a missing directory
    return load_custom_local(path, word_boxes=word_boxes)


# Of words with their predecessor's box: a segment's words share one (FUNSD 67%, synthetic 43%); words ~0.
SHARED_BOX_SHARE = 0.1


def builds_word_boxes(source: str) -> bool:
    """Whether --word-boxes changes a source's boxes: FUNSD-layout directories and synthetic forms build
    either kind; receipts, dataset directories and hub copies have the boxes they were made with."""
    kind = source_kind(source)
    if kind == "local":
        return not is_dataset_dir(Path(source).expanduser())
    return kind == "synthetic"


def has_word_boxes(split: datasets.Dataset) -> bool:
    """Each word its own box (else segment boxes): under segment boxes a segment's words share one."""
    shared = words = 0
    for boxes in split["bboxes"]:
        words += len(boxes)
        shared += sum(1 for a, b in zip(boxes, boxes[1:], strict=False) if a == b)
    return shared <= SHARED_BOX_SHARE * words


def data_word_boxes(source: str, word_boxes: bool, train: datasets.Dataset) -> bool:
    """The box mode a run's data has, as config.toml records it for predict: what was asked for where the
    source builds either, word boxes for the receipt generator, else what the training split shows."""
    if builds_word_boxes(source):
        return word_boxes
    if source_kind(source) == "receipts":
        return True
    return has_word_boxes(train)


def check_word_boxes(source: str) -> None:
    """--word-boxes given for a source whose boxes are fixed would be silently ignored: refused."""
    if not builds_word_boxes(source):
        raise DistillError(
            f"--word-boxes applies to a FUNSD-layout directory or synthetic forms; {source} has the boxes it "
            "was made with (the run records which: word or segment boxes)"
        )


def describe_source(
    source: str,
    *,
    word_boxes: bool = False,
    synthetic_forms: int | None = None,
    max_words: int | None = None,
    seed: int = 0,
) -> str:
    """One line for reports and metrics.json, e.g. 'synthetic (seed 0, 48/16 forms, <= 120 words, segment boxes)'."""
    boxes = "word boxes" if word_boxes else "segment boxes"
    kind = source_kind(source)
    if kind == "synthetic":
        num_train, num_test = synthetic_split_sizes(synthetic_forms)
        words = DEFAULT_MAX_WORDS if max_words is None else max_words
        return f"synthetic (seed {seed}, {num_train}/{num_test} forms, <= {words} words, {boxes})"
    if kind == "receipts":
        num_train, num_test = synthetic_split_sizes(synthetic_forms)
        return (
            f"synthetic receipts (seed {seed}, {num_train}/{num_test} receipts, CORD-like labels, word boxes)"
        )
    if kind == "local":
        path = Path(source).expanduser()
        shown = shown_path(source)
        if is_dataset_dir(path):
            return f"dataset directory {shown} (its own labels and boxes)"
        if path.is_dir() and not is_funsd_release(path):
            return f"FUNSD-layout directory at {shown} (own labels, {boxes})"
        return f"FUNSD release at {shown} ({boxes})"
    return f"hub dataset {source} ({boxes})"
