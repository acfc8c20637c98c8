"""Bad FUNSD release input: one DistillError that names the file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from distill.data.funsd import load_funsd_local
from distill.errors import DistillError

GOOD_FORM = {
    "form": [
        {
            "id": 0,
            "text": "Date:",
            "box": [10, 10, 60, 30],
            "label": "question",
            "words": [{"text": "Date:", "box": [10, 10, 60, 30]}],
            "linking": [[0, 1]],
        },
        {
            "id": 1,
            "text": "May 3",
            "box": [70, 10, 150, 30],
            "label": "answer",
            "words": [{"text": "May", "box": [70, 10, 110, 30]}, {"text": "3", "box": [120, 10, 150, 30]}],
            "linking": [[0, 1]],
        },
    ]
}


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A two-form release in the official layout: one form per split."""
    root = tmp_path / "funsd"
    for split in ("training_data", "testing_data"):
        (root / split / "annotations").mkdir(parents=True)
        (root / split / "images").mkdir()
        (root / split / "annotations" / "form1.json").write_text(json.dumps(GOOD_FORM))
        Image.new("L", (200, 100), 255).save(root / split / "images" / "form1.png")
    return root


def annotation(root: Path) -> Path:
    return root / "training_data" / "annotations" / "form1.json"


def edit_form(root: Path, edit) -> Path:
    form = json.loads(json.dumps(GOOD_FORM))
    edit(form)
    annotation(root).write_text(json.dumps(form))
    return annotation(root)


def error_of(root: Path) -> DistillError:
    with pytest.raises(DistillError) as caught:
        load_funsd_local(root)
    return caught.value


def test_the_minimal_release_loads(release):
    data = load_funsd_local(release)
    assert data["train"][0]["tokens"] == ["Date:", "May", "3"]
    assert data["train"][0]["bboxes"][1] == [350, 100, 750, 300]  # segment box, 200x100 image


def test_missing_directory(tmp_path):
    err = error_of(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err) and "no such directory" in str(err)


def test_a_file_is_not_a_release(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    assert "not a directory" in str(error_of(tmp_path / "file.txt"))


@pytest.mark.parametrize("missing", ["training_data", "testing_data", "testing_data/annotations"])
def test_missing_split_or_annotations_directory(release, missing):
    target = release / missing
    for child in sorted(target.rglob("*"), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    target.rmdir()
    err = error_of(release)
    assert str(target) in str(err) and "missing directory" in str(err)


def test_no_annotation_files(release):
    annotation(release).unlink()
    assert "no annotation files" in str(error_of(release))


def test_annotation_that_does_not_parse(release):
    annotation(release).write_text('{"form": [')
    err = error_of(release)
    assert str(annotation(release)) in str(err) and "not valid JSON" in str(err)
    assert err.path == annotation(release)


def test_annotation_without_a_form_list(release):
    annotation(release).write_text('{"segments": []}')
    assert str(annotation(release)) in str(error_of(release))


def test_annotation_without_its_image(release):
    image = release / "training_data" / "images" / "form1.png"
    image.unlink()
    err = error_of(release)
    assert str(annotation(release)) in str(err) and str(image) in str(err)


@pytest.mark.parametrize(
    "box",
    [[1, 2, 3], [1, 2, 3, 4, 5], [1, "2", 3, 4], None, [1, 2, 3, True], [1, 2, 3, float("nan")]],
)
def test_word_box_without_four_numbers(release, box):
    path = edit_form(release, lambda form: form["form"][1]["words"][0].update(box=box))
    err = error_of(release)
    assert str(path) in str(err) and "four numbers" in str(err) and "segment 1 word 0" in str(err)


@pytest.mark.parametrize("word_boxes", [False, True])
def test_a_coordinate_beyond_any_page_is_named_by_file_segment_and_word(release, word_boxes):
    """Issue 20: 1e308 is finite, but scaled to 0..1000 it overflowed (OverflowError in normalize_box)."""
    path = edit_form(release, lambda form: form["form"][1]["words"][1].update(box=[120, 10, 1e308, 30]))
    with pytest.raises(DistillError) as caught:
        load_funsd_local(release, word_boxes=word_boxes)
    err = str(caught.value)
    assert str(path) in err and "segment 1 word 1 ('3') box" in err and "beyond any page" in err


def test_segment_box_without_four_numbers(release):
    path = edit_form(release, lambda form: form["form"][0].update(box=[0, 0]))
    err = error_of(release)
    assert str(path) in str(err) and "segment 0 box" in str(err)


def test_unknown_label(release):
    path = edit_form(release, lambda form: form["form"][0].update(label="title"))
    err = error_of(release)
    assert str(path) in str(err) and "unknown label 'title'" in str(err)


def test_word_without_text(release):
    path = edit_form(release, lambda form: form["form"][0]["words"][0].pop("text"))
    assert str(path) in str(error_of(release))


@pytest.mark.parametrize("content", [b"", b"not a png at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_image_that_does_not_open(release, content):
    image = release / "testing_data" / "images" / "form1.png"
    image.write_bytes(content)
    err = error_of(release)
    assert str(image) in str(err) and "image does not open" in str(err)


def test_corrupt_image_data_is_caught_when_reading_its_size(release):
    image = release / "testing_data" / "images" / "form1.png"
    data = bytearray(image.read_bytes())
    data[-20] ^= 0xFF  # inside the last chunks: the header still reads, the CRC does not match
    image.write_bytes(bytes(data))
    assert str(image) in str(error_of(release))
