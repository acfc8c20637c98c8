"""Entities out of word tags: spans, broken sequences, scores and boxes, any label set."""

from __future__ import annotations

import numpy as np

from distill.builders import tiny_student
from distill.entities import Entity, decode_entities
from distill.labels import LabelSet
from distill.predict import Predictor

WORDS = ["Iced", "Latte", "25,000", "TOTAL", "25,000", "thanks", "stray", "x", "y"]
TAGS = [
    "B-menu.nm",
    "I-menu.nm",
    "B-menu.price",
    "B-total.total_price",
    "I-total.total_price",
    "O",
    "I-menu.nm",  # I- after O: a new entity
    "I-menu.nm",
    "I-total.total_price",  # label change mid-span: splits
]
TAGS_SHORT = ["B-menu.nm", "I-menu.nm", "O", "I-total.total_price", "B-total.total_price", "I-menu.nm"]
SCORES = [0.9, 0.7, 0.8, 0.6, 1.0, 0.99, 0.5, 0.3, 0.4]
BOXES = [[10, 10, 50, 20], [55, 12, 90, 22], [200, 10, 260, 20], [10, 40, 60, 50], [200, 38, 260, 52]]
BOXES += [[0, 0, 1, 1]] * 4


def test_spans_with_text_label_score_and_box() -> None:
    entities = decode_entities(WORDS, TAGS, SCORES, BOXES)
    assert [(e.label, e.text) for e in entities] == [
        ("menu.nm", "Iced Latte"),
        ("menu.price", "25,000"),
        ("total.total_price", "TOTAL 25,000"),
        ("menu.nm", "stray x"),
        ("total.total_price", "y"),
    ]
    first = entities[0]
    assert (first.start, first.end, first.box) == (0, 2, (10, 10, 90, 22))
    assert abs(first.score - 0.8) < 1e-9
    assert entities[2].box == (10, 38, 260, 52)


def test_b_after_b_of_the_same_type_starts_a_second_entity() -> None:
    entities = decode_entities(["a", "b"], ["B-X", "B-X"])
    assert entities == [Entity("X", "a", 0, 1, 1.0, None), Entity("X", "b", 1, 2, 1.0, None)]


def test_all_outside_gives_no_entity() -> None:
    assert decode_entities(["a"], ["O"]) == []


def best_windows(windows: list[dict[str, np.ndarray]], n_words: int) -> list[int]:
    """For each word, the window where it sits furthest from an edge (the earliest on a tie), counted
    word by word from the windows' own tokens: the rule DESIGN.md states, not the merge's code."""
    best, margin = [-1] * n_words, [-1] * n_words
    for w, window in enumerate(windows):
        length = int(window["attention_mask"].sum())  # its tokens, the special ones at both ends included
        for position, word in enumerate(window["word_index"].tolist()):
            if word >= 0 and min(position, length - 1 - position) > margin[word]:
                best[word], margin[word] = w, min(position, length - 1 - position)
    return best


class WindowScriptedModel:
    """A stand-in token classifier that answers a word's true tag only in the window where the word
    sits furthest from an edge, and a wrong tag in every other window that holds it: a merge that
    took any other window (the first, the last) would label the overlap words wrongly."""

    input_names = ("input_ids", "attention_mask")

    def __init__(self, word_tags: list[int], labels: int, windows: list[dict[str, np.ndarray]]) -> None:
        self.word_tags = np.asarray(word_tags)
        self.labels = labels
        self.starts = [int(w["word_index"][w["word_index"] >= 0][0]) for w in windows]
        self.best = best_windows(windows, len(word_tags))

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        logits = np.zeros((*batch["input_ids"].shape, self.labels), dtype=np.float32)
        for row, word_index in enumerate(batch["word_index"]):
            window = self.starts.index(int(word_index[word_index >= 0][0]))  # which window this row is
            for position in np.nonzero(word_index >= 0)[0]:
                word = int(word_index[position])
                right = self.word_tags[word]
                tag = right if self.best[word] == window else (right + 1) % self.labels
                logits[row, position, tag] = 4.0
        return logits


def test_predictor_merges_windows_and_returns_entities_for_any_label_set() -> None:
    labels = LabelSet(("menu.nm", "total.total_price"))
    tags = [TAGS_SHORT[i % len(TAGS_SHORT)] for i in range(60)]  # long enough for several windows
    words = [f"w{i}" for i in range(len(tags))]
    boxes = [[i, i, i + 10, i + 5] for i in range(len(tags))]
    encoder = tiny_student(words, labels).encoder(max_length=16, stride=4)
    windows = encoder.encode_form(words, boxes)
    held = np.bincount(np.concatenate([w["word_index"][w["word_index"] >= 0] for w in windows]))
    assert len(windows) > 3 and (held > 1).sum() >= 10, "many words sit in two windows: the merge chooses"
    model = WindowScriptedModel([labels.label2id[t] for t in tags], len(labels.tags), windows)
    form = Predictor(encoder, model, labels.tags).predict_form(words, boxes)
    assert [p.label for p in form.words] == tags, "each word's label comes from its most central window"
    # The entities TAGS_SHORT spells, every 6 words, as seqeval reads it: B I | O | I after O starts one |
    # B | I of another type starts one.
    expected = []
    for k in range(0, 60, 6):
        expected += [("menu.nm", k, k + 2), ("total.total_price", k + 3, k + 4)]
        expected += [("total.total_price", k + 4, k + 5), ("menu.nm", k + 5, k + 6)]
    assert [(e.label, e.start, e.end) for e in form.entities] == expected
    first = form.entities[0]
    assert (first.label, first.text, first.box) == ("menu.nm", "w0 w1", (0, 0, 11, 6))
    assert 0.9 < first.score < 1.0  # softmax of a 4.0 margin over 5 tags


def test_predictor_is_quiet_about_forms_longer_than_the_model(caplog) -> None:
    """The windows cut a long form: the tokenizer's "sequence length is longer than the specified
    maximum" line, which sees the whole form first, must not reach a user of the API."""
    import logging

    labels = LabelSet(("menu.nm",))
    words = [f"word{i}" for i in range(300)]
    bundle = tiny_student(words, labels)
    bundle.tokenizer.model_max_length = 64  # far fewer than the form's sub-tokens
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("transformers.tokenization_utils_base")
    handler = Collect()
    logger.addHandler(handler)
    try:
        tagger = Predictor(bundle.encoder(max_length=64, stride=16), _Uniform(len(labels.tags)), labels.tags)
        assert len(tagger.predict(words)) == len(words)
    finally:
        logger.removeHandler(handler)
    assert not [m for m in seen if "longer than the specified maximum" in m], seen


class _Uniform:
    input_names = ("input_ids", "attention_mask")

    def __init__(self, labels: int) -> None:
        self.labels = labels

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros((*batch["input_ids"].shape, self.labels), dtype=np.float32)
