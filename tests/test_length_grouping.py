"""--group-by-length: the Trainer's batches carry less padding, and every window is still seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import Trainer

from distill.builders import tiny_student
from distill.config import TrainConfig
from distill.schema import FUNSD_LABELS
from distill.training.fit import training_arguments
from distill.training.trainer import WindowCollator, WindowDataset

WORDS = "Date Name Phone Company Amount Total".split() * 20


def padded_tokens_per_epoch(tmp_path: Path, group: bool) -> tuple[int, list[int]]:
    rng = np.random.default_rng(0)
    windows = [
        {
            "input_ids": np.full(n, 5, dtype=np.int64),
            "attention_mask": np.ones(n, dtype=np.int64),
            "labels": np.full(n, i, dtype=np.int64),  # the window's index, to count what was seen
        }
        for i, n in enumerate(rng.integers(10, 500, size=400))
    ]
    config = TrainConfig(group_by_length=group, batch_size=8, seed=0)
    trainer = Trainer(
        model=tiny_student(WORDS, FUNSD_LABELS).model,
        args=training_arguments(config, tmp_path / str(group), 1e-4, 1),
        train_dataset=WindowDataset(windows),
        data_collator=WindowCollator(0, ["input_ids", "attention_mask"]),
    )
    padded, seen = 0, []
    for batch in trainer.get_train_dataloader():
        padded += batch["input_ids"].numel()
        seen += batch["labels"][:, 0].tolist()
    return padded, seen


def test_group_by_length_cuts_padding_and_keeps_every_window(tmp_path: Path) -> None:
    random_batches, seen_random = padded_tokens_per_epoch(tmp_path, group=False)
    grouped, seen_grouped = padded_tokens_per_epoch(tmp_path, group=True)
    assert sorted(seen_grouped) == sorted(seen_random) == list(range(400))
    assert grouped < 0.8 * random_batches, (grouped, random_batches)
