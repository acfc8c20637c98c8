"""The run's label set: from the data, fixed by --labels, checked against the test split and models."""

from __future__ import annotations

import datasets
import pytest

from distill.errors import DistillError
from distill.labels import LabelSet, check_model_labels, repair_bio, resolve_labels
from distill.metrics import score_tags
from distill.schema import FUNSD_LABELS, LABELS, features


def split(names: list[str], forms: dict[str, list[str]]) -> datasets.Dataset:
    """A split whose forms are given as tag names, stored as ids of a ClassLabel of `names`."""
    feats = features(names)
    rows = {
        "id": list(forms),
        "tokens": [[f"w{i}" for i in range(len(t))] for t in forms.values()],
        "bboxes": [[[0, 0, 1, 1]] * len(t) for t in forms.values()],
        "ner_tags": [[names.index(tag) for tag in t] for t in forms.values()],
        "image": [None] * len(forms),
    }
    return datasets.Dataset.from_dict(rows, features=feats)


DOTTED = ["O", "B-menu.nm", "I-menu.nm", "B-total.total_price", "I-total.total_price"]


def data(train: dict[str, list[str]], test: dict[str, list[str]], names: list[str] = DOTTED):
    return datasets.DatasetDict(train=split(names, train), test=split(names, test))


def test_funsd_keeps_its_declared_order_and_is_left_untouched() -> None:
    funsd = data({"a": ["B-HEADER", "B-QUESTION", "B-ANSWER"]}, {"b": ["B-ANSWER"]}, LABELS)
    resolved, labels, repaired = resolve_labels(funsd)
    assert labels == FUNSD_LABELS and labels.tags == LABELS and repaired == 0
    assert resolved["train"] is funsd["train"]  # no relabelling: FUNSD runs are byte-for-byte as before


def test_any_label_names_build_bio_tags_with_o_first() -> None:
    labels = LabelSet(("menu.nm", "total.total_price"))
    assert labels.tags == DOTTED
    assert labels.model_kwargs()["id2label"][3] == "B-total.total_price"
    assert LabelSet.from_id2label({"0": "O", "1": "B-x", "2": "I-x"}).types == ("x",)


def test_labels_option_fixes_order_and_relabels_the_ids() -> None:
    d = data({"a": ["B-menu.nm", "I-menu.nm", "B-total.total_price"]}, {"b": ["B-total.total_price"]})
    resolved, labels, _ = resolve_labels(d, "total.total_price,menu.nm")
    assert labels.tags[1] == "B-total.total_price"
    names = resolved["train"].features["ner_tags"].feature.names
    assert names == labels.tags
    assert [names[t] for t in resolved["train"][0]["ner_tags"]] == [
        "B-menu.nm",
        "I-menu.nm",
        "B-total.total_price",
    ]


def test_label_seen_in_test_but_not_in_training_is_named_with_its_forms() -> None:
    d = data({"a": ["B-menu.nm"]}, {"receipt-7": ["B-total.total_price"], "receipt-8": ["O"]})
    with pytest.raises(DistillError, match=r"total\.total_price.*never in training.*receipt-7") as err:
        resolve_labels(d)
    assert "receipt-8" not in str(err.value)


def test_unknown_label_in_option_names_the_known_ones() -> None:
    d = data({"a": ["B-menu.nm", "B-total.total_price"]}, {"b": ["O"]})
    with pytest.raises(
        DistillError, match=r"unknown label\(s\) in --labels: menu\.price; the data has menu\.nm"
    ):
        resolve_labels(d, "menu.nm,menu.price,total.total_price")


def test_option_missing_a_type_of_the_data_is_refused() -> None:
    d = data({"a": ["B-menu.nm", "B-total.total_price"]}, {"b": ["O"]})
    with pytest.raises(DistillError, match=r"B-total\.total_price outside the run's labels"):
        resolve_labels(d, "menu.nm")


def test_empty_label_sets_are_refused() -> None:
    with pytest.raises(DistillError, match="empty label set"):
        resolve_labels(data({"a": ["O"]}, {"b": ["O"]}, ["O"]))
    with pytest.raises(DistillError, match="--labels is empty"):
        LabelSet.parse(" , ")
    with pytest.raises(DistillError, match="invalid entity type"):
        LabelSet(("B-x",))


def test_non_bio_tag_names_are_refused() -> None:
    with pytest.raises(DistillError, match="'MENU' in the training split is not a BIO tag"):
        resolve_labels(data({"a": ["MENU"]}, {"b": ["O"]}, ["O", "MENU"]))


def test_i_without_b_is_repaired_to_b_and_counted() -> None:
    assert repair_bio(["O", "I-x", "I-x", "B-y", "I-x"]) == (["O", "B-x", "I-x", "B-y", "B-x"], 2)
    d = data({"a": ["I-menu.nm", "I-menu.nm", "O"]}, {"b": ["B-menu.nm"]})
    resolved, _, repaired = resolve_labels(d)
    names = resolved["train"].features["ner_tags"].feature.names
    assert repaired == 1 and [names[t] for t in resolved["train"][0]["ner_tags"]] == [
        "B-menu.nm",
        "I-menu.nm",
        "O",
    ]


def test_a_model_trained_on_other_labels_is_refused_naming_both_sets() -> None:
    run = LabelSet(("menu.nm",))
    check_model_labels(run.id2label, run, "teacher")
    with pytest.raises(DistillError, match=r"B-HEADER.*differ from the run's.*B-menu\.nm"):
        check_model_labels(FUNSD_LABELS.id2label, run, "teacher")


def test_scores_per_type_follow_the_run_labels() -> None:
    gold = [["B-menu.nm", "I-menu.nm", "B-total.total_price"]]
    scores = score_tags(gold, gold, ["total.total_price", "menu.nm", "menu.price"])
    assert list(scores["per_type"]) == ["total.total_price", "menu.nm", "menu.price"]
    assert scores["per_type"]["menu.nm"]["f1"] == 1.0 and scores["per_type"]["menu.price"]["support"] == 0
