"""Issue 28: the TinyBERT-style transfer set: plausible candidates, numbers by shape, no hard tag on a
changed word, options recorded."""

from __future__ import annotations

import re

import datasets
import numpy as np
import pytest
import torch

from distill.builders import tiny_student
from distill.data.synthetic import make_synthetic
from distill.schema import FUNSD_LABELS
from distill.training.stages.common import encode_split
from distill.training.transfer_set import (
    TransferRecipe,
    cased_like,
    embedding_neighbours,
    same_shape,
    transfer_set,
)
from distill.windows import IGNORE_INDEX
from tests.test_students import WORDS


def train_split() -> datasets.Dataset:
    return make_synthetic(8, 0, max_words=40, seed=3)["train"]


def test_a_words_neighbours_are_the_nearest_in_the_teachers_input_embeddings() -> None:
    bundle = tiny_student(WORDS, FUNSD_LABELS)
    vocab = bundle.tokenizer.get_vocab()
    single = [w for w in dict.fromkeys(x.lower() for x in WORDS) if w.isalpha() and len(w) > 2 and w in vocab]
    first, second, third = single[:3]
    embeddings = bundle.model.get_input_embeddings().weight
    with torch.no_grad():
        embeddings[vocab[second]] = embeddings[vocab[first]] * 2.0  # the same direction: cosine 1
        embeddings[vocab[third]] = -embeddings[vocab[first]]  # the opposite: cosine -1
    found = embedding_neighbours(bundle, [first, second, third.upper()], k=3)
    assert set(found) == {first, second, third}, "lower-cased training words"
    assert found[first][0] == second and found[second][0] == first
    assert third not in found[first], "the farthest word is no candidate"
    assert first not in found[first], "never the word itself"


def test_numbers_keep_their_shape_and_words_their_case() -> None:
    rng = np.random.default_rng(0)
    assert re.fullmatch(r"\d\d/\d\d/\d\d", same_shape("12/03/98", rng))
    assert re.fullmatch(r"\$\d,\d\d\d\.\d\d", same_shape("$1,250.00", rng))
    assert cased_like("date", "NAME") == "DATE" and cased_like("date", "Name") == "Date"


@pytest.mark.parametrize("hard_tags", [False, True])
def test_a_changed_word_carries_the_teachers_targets_and_a_hard_tag_only_when_asked(hard_tags: bool) -> None:
    train = train_split()
    words = [w for form in train["tokens"] for w in form]
    neighbours = {w.lower(): ["replacement"] for w in words if w.isalpha() and len(w) >= 2}
    recipe = TransferRecipe(1, 1.0, "neighbours", hard_tags, "grow")  # every word a candidate
    transfer = transfer_set(train, recipe, seed=0, neighbours=neighbours)
    assert transfer.changed_words > 0.5 * transfer.words
    bundle = tiny_student(words + ["replacement"], FUNSD_LABELS)
    targets = [np.full((len(f), len(FUNSD_LABELS.tags)), 1.0, np.float32) for f in transfer.forms["tokens"]]
    encoder = bundle.encoder(128, 32)
    windows = encode_split(encoder, transfer.forms, targets, "test", transfer.hard_tags)
    form = transfer.forms[0]
    window = windows[0]
    for position in np.flatnonzero(window["word_index"] >= 0):
        word = int(window["word_index"][position])
        text = form["tokens"][word]
        assert window["teacher_logits"][position].sum() > 0, "every word learns the teacher's targets"
        if any(c.isdigit() for c in text) or text.lower() == "replacement":
            expected = form["ner_tags"][word] if hard_tags else IGNORE_INDEX
        else:  # punctuation stays as it was, with its tag
            expected = form["ner_tags"][word]
        assert window["labels"][position] == expected, (text, hard_tags)


def test_a_transfer_set_is_only_training_forms_with_ids_that_say_so() -> None:
    train = train_split()
    transfer = transfer_set(train, TransferRecipe(3, 0.4, "random", False, "grow"), seed=1)
    assert len(transfer.forms) == 3 * len(train) == len(transfer.hard_tags)
    assert {i.split("#aug")[0] for i in transfer.forms["id"]} == set(train["id"])
    with pytest.raises(ValueError, match="neighbours"):
        transfer_set(train, TransferRecipe(1, 0.4, "neighbours", False, "grow"), seed=1)
