"""The data a run was trained and scored on, rebuilt from its config (TrainConfig) in the run's labels.

Training, the export's validation and the bench read a run's forms through here, so every
stage scores the same split.
"""

from __future__ import annotations

import sys

import datasets

from distill.config import TrainConfig
from distill.data import builds_word_boxes, describe_source, load_source
from distill.errors import DistillError
from distill.labels import LabelSet, data_labels, resolve_labels


def _source_options(config: TrainConfig) -> dict:
    return {
        # A recorded box mode is the data's own where the source has one kind (data_word_boxes): not a request.
        "word_boxes": config.word_boxes and builds_word_boxes(config.data),
        "synthetic_forms": config.synthetic_forms,
        "max_words": config.max_words,
        "seed": config.seed,
    }


def describe_run_data(config: TrainConfig) -> str:
    """One line naming a run's data and the split it is scored on."""
    split = f"{config.holdout_forms} held-out training forms" if config.holdout_forms else "the test split"
    validation = (
        f", {config.validation_forms} training forms held out to choose the epoch"
        if config.validation_forms
        else ""
    )
    return f"{describe_source(config.data, **_source_options(config))}, scored on {split}{validation}"


def run_labels(data: datasets.DatasetDict) -> LabelSet:
    """The label set of data from load_run_data (its ner_tags names are the run's tags)."""
    return data_labels(data)


def load_run_data(config: TrainConfig) -> datasets.DatasetDict:
    """The dataset a run was trained and scored on, rebuilt from its config, in the run's labels."""
    return load_run_data_noted(config)[0]


def load_run_data_noted(config: TrainConfig) -> tuple[datasets.DatasetDict, list[str]]:
    """load_run_data, with what a report should say about the data: how boxes were normalised
    (sources that tell), forms without an image, I- tags repaired."""
    data, _, repaired = resolve_labels(load_source(config.data, **_source_options(config)), config.labels)
    notes = [
        n
        for split in data.values()
        for n in (split.info.description or "").splitlines()
        if n.startswith("note:")
    ]
    if repaired:
        notes.append(
            f"note: {repaired} I- tag(s) without a B- before them were repaired to B- (seqeval reads them so)"
        )
    data = _validation(_held_out(data, config), config)
    return data, [n.removeprefix("note:").strip() for n in notes]


def _split_off(
    data: datasets.DatasetDict, forms: int, option: str, name: str, seed: int
) -> datasets.DatasetDict:
    """`forms` training forms moved out of the training split into split `name`.

    The draw is fixed (`seed`, never the run's), so runs tuned or stopped on the same forms compare like
    for like; --holdout-forms and --validation-forms draw with different seeds.
    """
    if forms <= 0:
        return data
    train = data["train"]
    if forms >= len(train):
        raise DistillError(f"{option} ({forms}) must be fewer than the {len(train)} training forms")
    split = train.train_test_split(test_size=forms, seed=seed, shuffle=True)
    return datasets.DatasetDict({**data, "train": split["train"], name: split["test"]})


def _held_out(data: datasets.DatasetDict, config: TrainConfig) -> datasets.DatasetDict:
    """--holdout-forms: training forms scored instead of the test split (for tuning)."""
    return _split_off(data, config.holdout_forms, "--holdout-forms", "test", seed=0)


def _validation(data: datasets.DatasetDict, config: TrainConfig) -> datasets.DatasetDict:
    """--validation-forms: training forms no model trains on, to choose the epoch by (early stopping)."""
    return _split_off(data, config.validation_forms, "--validation-forms", "validation", seed=1)


def count_empty_forms(data: datasets.DatasetDict) -> dict[str, int]:
    """Forms without a single word, per split: they load, but have nothing to train on or score."""
    return {split: sum(1 for tokens in data[split]["tokens"] if not tokens) for split in data}


def note_empty_forms(counts: dict[str, int]) -> None:
    """One line on stderr when some forms have no words (the run skips them in training)."""
    if any(counts.values()):
        parts = ", ".join(f"{n} in {split}" for split, n in counts.items() if n)
        print(
            f"note: {sum(counts.values())} form(s) without words ({parts}): "
            "skipped for training; in evaluation they have nothing to score",
            file=sys.stderr,
            flush=True,
        )
