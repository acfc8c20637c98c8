"""The local FUNSD release reader against the shared copy of the real data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from distill.data.funsd import load_funsd_local, read_funsd_split
from distill.schema import LABELS, features

FUNSD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "funsd"
pytestmark = pytest.mark.skipif(
    not FUNSD.is_dir(), reason=f"no FUNSD release at {FUNSD} (the shared copy is absent on this machine)"
)


@pytest.fixture(scope="module")
def segment_level():
    return load_funsd_local(FUNSD)


@pytest.fixture(scope="module")
def word_level():
    return load_funsd_local(FUNSD, word_boxes=True)


def rows(dataset):
    return dataset.remove_columns("image").to_list()


def expected_words(ann_file: Path) -> list[tuple[str, str, list[int], int]]:
    """(text, tag, pixel box, segment index) of every non-empty word, straight from the JSON."""
    words = []
    for index, segment in enumerate(json.loads(ann_file.read_text())["form"]):
        kept = [w for w in segment["words"] if w["text"].strip()]
        for position, word in enumerate(kept):
            label = segment["label"]
            tag = "O" if label == "other" else ("B-" if position == 0 else "I-") + label.upper()
            words.append((word["text"], tag, word["box"], index))
    return words


def annotation_files(split: str) -> list[Path]:
    dirname = {"train": "training_data", "test": "testing_data"}[split]
    return sorted((FUNSD / dirname / "annotations").glob("*.json"))


def test_split_sizes_ids_and_schema(segment_level):
    assert {split: len(ds) for split, ds in segment_level.items()} == {"train": 149, "test": 50}
    for split, dataset in segment_level.items():
        assert dataset.features == features()
        assert list(dataset["id"]) == [f.stem for f in annotation_files(split)]


def test_word_counts_and_dropped_empty_words(segment_level):
    total = sum(len(tokens) for ds in segment_level.values() for tokens in ds["tokens"])
    dropped = sum(read_funsd_split(FUNSD / d)[1] for d in ("training_data", "testing_data"))
    assert (total, dropped) == (30_595, 890)
    assert "8707 words (266 empty words dropped)" in segment_level["test"].info.description


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_word_once_in_order_with_its_segment_label(segment_level, split):
    for form, ann_file in zip(rows(segment_level[split]), annotation_files(split), strict=True):
        expected = expected_words(ann_file)
        assert form["tokens"] == [text for text, *_ in expected], ann_file.name
        assert [LABELS[t] for t in form["ner_tags"]] == [tag for _, tag, *_ in expected], ann_file.name


@pytest.mark.parametrize("split", ["train", "test"])
def test_word_boxes_are_the_words_own_boxes(word_level, split):
    for form, ann_file in zip(rows(word_level[split]), annotation_files(split), strict=True):
        width, height = Image.open(ann_file.parent.parent / "images" / f"{ann_file.stem}.png").size
        expected = [
            [int(1000 * x0 / width), int(1000 * y0 / height), int(1000 * x1 / width), int(1000 * y1 / height)]
            for _, _, (x0, y0, x1, y1), _ in expected_words(ann_file)
        ]
        assert form["bboxes"] == expected, ann_file.name


@pytest.mark.parametrize("split", ["train", "test"])
def test_segment_boxes_enclose_their_words(segment_level, word_level, split):
    pairs = zip(rows(segment_level[split]), rows(word_level[split]), annotation_files(split), strict=True)
    for seg_form, word_form, ann_file in pairs:
        segment_of = [index for *_, index in expected_words(ann_file)]
        by_segment: dict[int, set[tuple[int, ...]]] = {}
        for box, word_box, segment in zip(seg_form["bboxes"], word_form["bboxes"], segment_of, strict=True):
            by_segment.setdefault(segment, set()).add(tuple(box))
            assert box[0] <= word_box[0] and box[1] <= word_box[1], ann_file.name
            assert box[2] >= word_box[2] and box[3] >= word_box[3], ann_file.name
        assert all(len(boxes) == 1 for boxes in by_segment.values()), ann_file.name


def test_boxes_within_range(segment_level, word_level):
    for dataset_dict in (segment_level, word_level):
        for dataset in dataset_dict.values():
            for boxes in dataset["bboxes"]:
                for box in boxes:
                    assert len(box) == 4 and all(0 <= v <= 1000 for v in box)
                    assert box[0] <= box[2] and box[1] <= box[3]


def test_image_column_opens_the_forms_png(segment_level):
    first = segment_level["train"][0]
    png = FUNSD / "training_data" / "images" / f"{first['id']}.png"
    assert first["image"].size == Image.open(png).size
