"""Readers of datasets that carry their own labels: a ClassLabel `ner_tags` dataset (saved to disk,
as parquet files the way the hub stores them) and the CORD v2 release layout, on small records
built here with the real field layout (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from PIL import Image

from distill.data import load_source
from distill.errors import DistillError

TAGS = ["O", "B-MENU.NM", "I-MENU.NM", "B-TOTAL.PRICE", "I-TOTAL.PRICE"]


def classlabel_split(names: list[str], forms: list[list[str]]) -> datasets.Dataset:
    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "words": datasets.Sequence(datasets.Value("string")),  # an extra column is dropped
            "tokens": datasets.Sequence(datasets.Value("string")),
            "bboxes": datasets.Sequence(datasets.Sequence(datasets.Value("int64"))),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = {
        "id": [str(i) for i in range(len(forms))],
        "words": [["x"] * len(f) for f in forms],
        "tokens": [[f"w{j}" for j in range(len(f))] for f in forms],
        "bboxes": [[[j, j, j + 1, j + 1] for j in range(len(f))] for f in forms],
        "ner_tags": [[names.index(t) for t in f] for f in forms],
    }
    return datasets.Dataset.from_dict(rows, features=feats)


def test_classlabel_dataset_from_parquet_keeps_the_feature_names(tmp_path: Path) -> None:
    # Not O-first, as a hub dataset may declare them: the run reorders to O + B-/I- pairs.
    names = ["B-TOTAL.PRICE", "I-TOTAL.PRICE", "O", "B-MENU.NM", "I-MENU.NM"]
    train = classlabel_split(names, [["B-MENU.NM", "I-MENU.NM", "O", "B-TOTAL.PRICE"]])
    test = classlabel_split(names, [["B-TOTAL.PRICE", "I-TOTAL.PRICE"]])
    (tmp_path / "ds" / "data").mkdir(parents=True)
    train.to_parquet(tmp_path / "ds" / "data" / "train-00000-of-00001.parquet")
    test.to_parquet(tmp_path / "ds" / "data" / "test-00000-of-00001.parquet")
    data = load_source(str(tmp_path / "ds"))
    assert data["train"].features["ner_tags"].feature.names == names
    assert data["train"].column_names == ["id", "tokens", "bboxes", "ner_tags", "image"]
    assert data["train"][0]["image"] is None

    from distill.labels import resolve_labels

    resolved, labels, _ = resolve_labels(data)
    assert labels.types == ("TOTAL.PRICE", "MENU.NM")  # the feature's order, O first
    got = resolved["train"].features["ner_tags"].feature
    assert [got.names[t] for t in resolved["train"][0]["ner_tags"]] == [
        "B-MENU.NM",
        "I-MENU.NM",
        "O",
        "B-TOTAL.PRICE",
    ]


def test_classlabel_dataset_saved_to_disk(tmp_path: Path) -> None:
    split = classlabel_split(TAGS, [["B-MENU.NM", "B-TOTAL.PRICE"]])
    datasets.DatasetDict(train=split, test=split).save_to_disk(str(tmp_path / "saved"))
    data = load_source(str(tmp_path / "saved"))
    assert data["test"].features["ner_tags"].feature.names == TAGS


def test_classlabel_names_that_are_not_bio_are_refused(tmp_path: Path) -> None:
    split = classlabel_split(["O", "MENU"], [["MENU"]])
    datasets.DatasetDict(train=split, test=split).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DistillError, match="'MENU' in dataset directory .* is not a BIO tag"):
        load_source(str(tmp_path / "saved"))


def word(text: str, x: int, y: int, w: int = 60, h: int = 20) -> dict:
    """A CORD word: its text and a quad, corners clockwise from the top left (slightly skewed)."""
    quad = {
        "x1": x,
        "y1": y + 1,
        "x2": x + w,
        "y2": y,
        "x3": x + w + 2,
        "y3": y + h,
        "x4": x,
        "y4": y + h + 1,
    }
    return {"quad": quad, "is_key": 0, "row_id": 1, "text": text}


def cord_record(image_id: int, lines: list[tuple[str, list[str]]]) -> dict:
    valid_line = [
        {
            "words": [word(t, 20 + 80 * i, 30 + 40 * row) for i, t in enumerate(texts)],
            "category": c,
            "group_id": row,
        }
        for row, (c, texts) in enumerate(lines)
    ]
    ground_truth = {
        "gt_parse": {},
        "meta": {
            "version": "2.0.0",
            "split": "train",
            "image_id": image_id,
            "image_size": {"width": 400, "height": 800},
        },
        "valid_line": valid_line,
        "roi": {},
        "repeating_symbol": [],
        "dontcare": [],
    }
    return {"image": Image.new("RGB", (40, 80), "white"), "ground_truth": json.dumps(ground_truth)}


def cord_split(records: list[dict]) -> datasets.Dataset:
    feats = datasets.Features({"image": datasets.Image(), "ground_truth": datasets.Value("string")})
    return datasets.Dataset.from_dict({k: [r[k] for r in records] for k in feats}, features=feats)


def write_cord(root: Path, train: list[dict], test: list[dict]) -> Path:
    (root / "data").mkdir(parents=True)
    for name, records in (("train", train), ("validation", test), ("test", test)):
        cord_split(records).to_parquet(root / "data" / f"{name}-00000-of-00001.parquet")
    return root


def test_cord_release_becomes_words_quad_boxes_and_bio_lines(tmp_path: Path) -> None:
    train = [
        cord_record(
            0,
            [
                ("menu.nm", ["CINNAMON", "SUGAR"]),
                ("menu.price", ["17,000"]),
                ("total.total_price", ["17,000"]),
            ],
        ),
        cord_record(1, [("menu.nm", ["AMERICANO"]), ("total.total_price", ["TOTAL", "25,000"])]),
    ]
    test = [cord_record(2, [("menu.nm", ["LATTE"]), ("total.total_price", ["30,000"])])]
    data = load_source(str(write_cord(tmp_path / "cord", train, test)))
    names = data["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-menu.nm", "I-menu.nm", "B-menu.price", "I-menu.price"] + [
        "B-total.total_price",
        "I-total.total_price",
    ]
    first = data["train"][0]
    assert first["id"] == "train-0" and first["tokens"] == ["CINNAMON", "SUGAR", "17,000", "17,000"]
    assert [names[t] for t in first["ner_tags"]] == [
        "B-menu.nm",
        "I-menu.nm",
        "B-menu.price",
        "B-total.total_price",
    ]
    # quad (20, 31) (80, 30) (82, 50) (20, 51) on a 400 x 800 page -> its rectangle in 0..1000
    assert first["bboxes"][0] == [50, 37, 205, 63]
    assert first["image"].size == (40, 80)
    assert len(data["test"]) == 1  # CORD's validation split is not used


def test_cord_label_only_in_test_is_named(tmp_path: Path) -> None:
    train = [cord_record(0, [("menu.nm", ["A"])])]
    test = [cord_record(7, [("menu.nm", ["B"]), ("void_menu.nm", ["C"])])]
    with pytest.raises(DistillError, match=r"void_menu\.nm occur in the test split.*test-7"):
        load_source(str(write_cord(tmp_path / "cord", train, test)))


def test_cord_record_without_image_size_is_named(tmp_path: Path) -> None:
    broken = cord_record(0, [("menu.nm", ["A"])])
    gt = json.loads(broken["ground_truth"])
    del gt["meta"]["image_size"]
    broken["ground_truth"] = json.dumps(gt)
    with pytest.raises(
        DistillError, match="train record 0: ground_truth must be CORD JSON with meta.image_size"
    ):
        load_source(str(write_cord(tmp_path / "cord", [broken], [broken])))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda gt: gt["valid_line"][0].update(words=None),
            r"train record 0 valid_line 0 \(menu\.nm\): 'words' must be a list",
        ),
        (lambda gt: gt.update(valid_line=None), "train record 0: valid_line must be a list"),
        (
            lambda gt: gt["valid_line"][0].update(category="B-menu"),
            r"train record 0 valid_line 0: invalid entity type 'B-menu'",
        ),
        (
            lambda gt: gt["valid_line"][0].update(category="menu, nm"),
            r"train record 0 valid_line 0: invalid entity type",
        ),
    ],
)
def test_a_broken_cord_line_is_named_by_its_record(tmp_path: Path, edit, message: str) -> None:
    """Issue 20: `"words": null` raised a bare TypeError; a refused category named no record."""
    broken = cord_record(0, [("menu.nm", ["A"]), ("menu.price", ["1,000"])])
    gt = json.loads(broken["ground_truth"])
    edit(gt)
    broken["ground_truth"] = json.dumps(gt)
    good = cord_record(1, [("menu.nm", ["B"])])
    with pytest.raises(DistillError, match=message):
        load_source(str(write_cord(tmp_path / "cord", [broken, good], [good])))
