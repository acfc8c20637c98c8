"""The tiny preset's tokenizers are trained once per run directory, then loaded from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.builders import train_wordpiece_tokenizer, trained_once
from distill.models import TINY_WORDPIECE_VOCAB

WORDS = [f"{stem}{i}" for i in range(300) for stem in ("total", "date", "name", "amount", "sig")]


def test_a_tokenizer_is_trained_once_and_then_loaded(tmp_path: Path) -> None:
    calls: list[int] = []

    def train():  # noqa: ANN202 - a tokenizer class from transformers
        calls.append(1)
        return train_wordpiece_tokenizer(WORDS, TINY_WORDPIECE_VOCAB)

    first = trained_once(train, tmp_path / "student")
    second = trained_once(train, tmp_path / "student")
    assert len(calls) == 1, "the second build loads the saved tokenizer instead of training again"
    assert first.get_vocab() == second.get_vocab()
    assert type(second).__name__ == "DistilBertTokenizerFast"
    assert not [p for p in tmp_path.rglob(".*")], "no temporary directory left behind"


def test_without_a_directory_it_just_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a stray save would land here
    tokenizer = trained_once(lambda: train_wordpiece_tokenizer(WORDS, TINY_WORDPIECE_VOCAB), None)
    assert tokenizer.tokenize("total12") and not list(tmp_path.iterdir())
