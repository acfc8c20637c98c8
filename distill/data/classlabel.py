"""Datasets that already carry words and a ClassLabel `ner_tags` (or CORD's ground_truth), from
the hub or from a local directory: a `save_to_disk` DatasetDict, or parquet files as the hub
stores them (`data/train-00000-of-00001.parquet`...). Label names come from the feature.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from distill.data.cord import cord_from_dataset, is_cord
from distill.data.hub import validate_splits
from distill.errors import DistillError

PARQUET_SPLITS = ("train", "validation", "test")


def is_dataset_dir(path: Path) -> bool:
    """A saved DatasetDict or a directory of parquet files (not a FUNSD-layout directory)."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or any(path.rglob("*.parquet")))


def load_dataset_dir(path: Path) -> datasets.DatasetDict:
    """The splits of a local dataset directory, in the schema (see from_loaded)."""
    origin = f"dataset directory {path}"
    try:
        if (path / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(path))
        else:
            files = {s: sorted(str(f) for f in path.rglob(f"{s}*.parquet")) for s in PARQUET_SPLITS}
            files = {s: f for s, f in files.items() if f}
            if not files:
                raise DistillError(
                    "parquet files must be named by split: train*.parquet, test*.parquet", path
                )
            loaded = datasets.load_dataset("parquet", data_files=files)
    except (OSError, ValueError) as err:
        raise DistillError(f"could not load the dataset: {str(err).splitlines()[0]}", path) from err
    if not isinstance(loaded, datasets.DatasetDict):
        raise DistillError("not a DatasetDict of train/test splits", path)
    return from_loaded(loaded, origin)


def from_loaded(data: datasets.DatasetDict, origin: str) -> datasets.DatasetDict:
    """CORD's release layout goes to its reader; anything else must have the word-level columns."""
    return cord_from_dataset(data, origin) if is_cord(data) else validate_splits(data, origin)
