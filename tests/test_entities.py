"""Entities out of word tags: spans, broken sequences, scores and boxes, any label set."""

from __future__ import annotations

import numpy as np

from distill.entities import Entity, decode_entities
from distill.labels import LabelSet
from distill.models import tiny_student
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


class ScriptedModel:
    """A stand-in token classifier that answers a fixed tag per word (at every sub-token):
    Predictor's own path (windows, merge, labels, entities) runs for real around it."""

    input_names = ("input_ids", "attention_mask")

    def __init__(self, word_tags: list[int], labels: int) -> None:
        self.word_tags = np.asarray(word_tags)
        self.labels = labels

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        logits = np.zeros((*batch["input_ids"].shape, self.labels), dtype=np.float32)
        rows, cols = np.nonzero(batch["word_index"] >= 0)
        logits[rows, cols, self.word_tags[batch["word_index"][rows, cols]]] = 4.0
        return logits


def test_predictor_returns_entities_for_any_label_set_across_windows() -> None:
    labels = LabelSet(("menu.nm", "total.total_price"))
    tags = [TAGS_SHORT[i % len(TAGS_SHORT)] for i in range(60)]  # long enough for several windows
    words = [f"w{i}" for i in range(len(tags))]
    boxes = [[i, i, i + 10, i + 5] for i in range(len(tags))]
    encoder = tiny_student(words, labels).encoder(max_length=16, stride=4)
    model = ScriptedModel([labels.label2id[t] for t in tags], len(labels.tags))
    form = Predictor(encoder, model, labels.tags).predict_form(words, boxes)
    assert [p.label for p in form.words] == tags
    assert form.entities == decode_entities(words, tags, [p.score for p in form.words], boxes)
    first = form.entities[0]
    assert (first.label, first.text, first.box) == ("menu.nm", "w0 w1", (0, 0, 11, 6))
    assert 0.9 < first.score < 1.0  # softmax of a 4.0 margin over 5 tags
