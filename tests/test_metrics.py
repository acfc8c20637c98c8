import numpy as np
import pytest
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from distill.metrics import score_tags, score_word_logits
from distill.schema import FUNSD_LABELS, LABEL2ID

GOLD = [
    ["B-HEADER", "I-HEADER", "O", "B-QUESTION", "I-QUESTION", "B-ANSWER"],
    ["B-QUESTION", "B-ANSWER", "I-ANSWER", "O"],
]
PRED = [
    ["B-HEADER", "I-HEADER", "O", "B-QUESTION", "O", "B-ANSWER"],
    ["B-QUESTION", "B-ANSWER", "I-ANSWER", "B-ANSWER"],
]


def test_equals_seqeval_on_a_hand_made_prediction() -> None:
    scores = score_tags(GOLD, PRED)
    assert scores["f1"] == pytest.approx(f1_score(GOLD, PRED))
    assert scores["precision"] == pytest.approx(precision_score(GOLD, PRED))
    assert scores["recall"] == pytest.approx(recall_score(GOLD, PRED))
    assert scores["word_accuracy"] == pytest.approx(accuracy_score(GOLD, PRED))


def test_hand_counted_values() -> None:
    # Gold entities: HEADER, QUESTION(2 words), ANSWER, QUESTION, ANSWER(2 words) = 5.
    # Predicted: HEADER ok, QUESTION(1 word) wrong, ANSWER ok, QUESTION ok, ANSWER ok, extra ANSWER = 6, 4 right.
    scores = score_tags(GOLD, PRED)
    assert scores["precision"] == pytest.approx(4 / 6)
    assert scores["recall"] == pytest.approx(4 / 5)
    assert scores["word_accuracy"] == pytest.approx(8 / 10)
    assert scores["per_type"]["HEADER"]["f1"] == pytest.approx(1.0)
    assert scores["per_type"]["QUESTION"]["recall"] == pytest.approx(0.5)


def test_from_logits_uses_argmax() -> None:
    gold_ids = [[LABEL2ID[t] for t in form] for form in GOLD]
    logits = [np.eye(7)[[LABEL2ID[t] for t in form]] for form in PRED]
    assert score_word_logits(gold_ids, logits, FUNSD_LABELS)["f1"] == pytest.approx(f1_score(GOLD, PRED))


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="form 0"):
        score_tags([["O", "O"]], [["O"]])
