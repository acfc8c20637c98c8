"""The user's own labels: a FUNSD-layout directory with dotted, CORD-like labels and no images,
trained end to end with the tiny preset (a LayoutLMv3 teacher on blank pages, a text student)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from distill.data import load_source
from distill.errors import DistillError
from distill.predict import Predictor
from tests.conftest import run_cli

LINES = [  # (label, words) of a receipt; `other` is outside any entity
    ("other", ["KOPI", "KITA"]),
    ("menu.nm", ["Iced", "Latte"]),
    ("menu.price", ["25,000"]),
    ("menu.nm", ["Croissant"]),
    ("menu.price", ["18,000"]),
    ("total.total_price", ["TOTAL", "43,000"]),
]


def receipt(seed: int, with_size: bool) -> dict:
    r = random.Random(seed)
    segments = []
    for row, (label, words) in enumerate(LINES):
        y = 20 + 30 * row
        boxes = [[20 + 90 * i, y, 100 + 90 * i + r.randint(0, 9), y + 20] for i in range(len(words))]
        segments.append(
            {
                "id": row,
                "label": label,
                "box": boxes[0],
                "words": [{"text": w, "box": b} for w, b in zip(words, boxes, strict=True)],
            }
        )
    form = {"form": segments}
    if with_size:
        form["image_size"] = {"width": 400, "height": 400}  # CORD's meta.image_size spelling
    return form


def write_dir(root: Path, forms: dict[str, list[dict]]) -> Path:
    for split, items in forms.items():
        (root / split / "annotations").mkdir(parents=True)
        for i, form in enumerate(items):
            (root / split / "annotations" / f"r{i}.json").write_text(json.dumps(form))
    return root


@pytest.fixture
def receipts_dir(tmp_path: Path) -> Path:
    train = [receipt(i, with_size=i % 2 == 0) for i in range(8)]
    test = [receipt(100 + i, with_size=False) for i in range(2)]
    return write_dir(tmp_path / "receipts", {"training_data": train, "testing_data": test})


def test_custom_directory_reads_sorted_dotted_labels_and_says_how_boxes_were_scaled(
    receipts_dir: Path,
) -> None:
    data = load_source(str(receipts_dir))
    names = data["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-menu.nm", "I-menu.nm", "B-menu.price", "I-menu.price"] + [
        "B-total.total_price",
        "I-total.total_price",
    ]
    assert data["train"][0]["image"] is None
    assert "4 by the page size in the annotation" in data["train"].info.description
    assert "4 by the extent of their boxes" in data["train"].info.description
    # extent: the right-most, lowest edge of the form's boxes becomes 1000
    assert max(b[3] for b in data["test"][0]["bboxes"]) == 1000


FUNSD_FORM = {
    "form": [
        {"id": 0, "label": "header", "words": [{"text": "ORDER", "box": [10, 5, 90, 20]}]},
        {"id": 1, "label": "question", "words": [{"text": "Date:", "box": [10, 30, 60, 50]}]},
        {"id": 2, "label": "answer", "words": [{"text": "May", "box": [70, 30, 110, 50]}]},
        {"id": 3, "label": "other", "words": [{"text": "page", "box": [10, 60, 50, 80]}]},
    ]
}


def funsd_release(root: Path, extra_segment: dict | None = None) -> Path:
    """A FUNSD release in miniature (images, FUNSD's four labels), one segment added to its training form."""
    from PIL import Image

    for split in ("training_data", "testing_data"):
        form = json.loads(json.dumps(FUNSD_FORM))
        if extra_segment and split == "training_data":
            form["form"].append(extra_segment)
        (root / split / "annotations").mkdir(parents=True)
        (root / split / "images").mkdir()
        (root / split / "annotations" / "f0.json").write_text(json.dumps(form))
        Image.new("L", (200, 100), 255).save(root / split / "images" / "f0.png")
    return root


def data_notes(data) -> str:
    return "\n".join(split.info.description for split in data.values())


def test_a_label_on_a_segment_without_words_neither_switches_the_reader_nor_goes_unsaid(
    tmp_path: Path,
) -> None:
    """Issue 20: one `"label": "signature"` on a segment whose only word is blank turned a FUNSD release
    into "your own labels", silently: the labels came out sorted (answer, header, question)."""
    blank_signature = {"id": 9, "label": "signature", "words": [{"text": " ", "box": [10, 90, 60, 99]}]}
    data = load_source(str(funsd_release(tmp_path / "funsd", blank_signature)))
    names = data["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-HEADER", "I-HEADER", "B-QUESTION", "I-QUESTION", "B-ANSWER", "I-ANSWER"]
    assert "FUNSD training_data" in data["train"].info.description, "read by the FUNSD release reader"
    assert "'signature' (training_data/annotations/f0.json) only on segments without words" in data_notes(
        data
    )
    # The same label on a segment with a word is data FUNSD does not have: your own labels, and why.
    worded = {"id": 9, "label": "signature", "words": [{"text": "J.Doe", "box": [10, 90, 60, 99]}]}
    own = load_source(str(funsd_release(tmp_path / "own", worded)))
    assert "signature" in own["train"].features["ner_tags"].feature.names[-1]
    assert (
        "not as a FUNSD release: label 'signature' in training_data/annotations/f0.json is not one of FUNSD's"
        in data_notes(own)
    )


def test_own_documents_say_why_they_are_not_a_funsd_release(receipts_dir: Path) -> None:
    data = load_source(str(receipts_dir))
    assert "not as a FUNSD release: training_data/images/ is missing" in data_notes(data)


def test_test_only_label_is_named_with_its_file(tmp_path: Path) -> None:
    odd = receipt(7, True)
    odd["form"][2]["label"] = "menu.discount"
    root = write_dir(tmp_path / "r", {"training_data": [receipt(1, True)], "testing_data": [odd]})
    with pytest.raises(
        DistillError, match=r"menu\.discount occur in the test split.*testing_data/annotations/r0\.json"
    ):
        load_source(str(root))


def test_tiny_preset_trains_end_to_end_on_custom_labels_without_images(
    receipts_dir: Path, tmp_path: Path
) -> None:
    run, reports = tmp_path / "run", tmp_path / "reports"
    args = ["-m", "distill.train", "--preset", "tiny", "--data", str(receipts_dir), "--epochs", "1"]
    args += ["--max-length", "32", "--stride", "8", "--output-dir", str(run), "--report-dir", str(reports)]
    run_cli(args, cwd=tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    types = ["menu.nm", "menu.price", "total.total_price"]
    assert metrics["labels"] == types
    for name in ("teacher", "student", "student-baseline"):
        assert list(metrics["models"][name]["per_type"]) == types
        id2label = json.loads((run / name / "config.json").read_text())["id2label"]
        assert id2label["1"] == "B-menu.nm" and len(id2label) == 7
    assert 'labels = "menu.nm,menu.price,total.total_price"' in (run / "config.toml").read_text()
    report = (reports / "training.md").read_text()
    assert "| total.total_price (2) |" in report
    assert "the LayoutLMv3 teacher saw a blank page" in report and "extent of their boxes" in report
    # the text student needs neither image nor boxes, and speaks the run's labels
    words = [w for _, ws in LINES for w in ws]
    form = Predictor.from_dir(run / "student", max_length=32, stride=8).predict_form(words)
    assert {p.label for p in form.words} <= set(
        json.loads((run / "student" / "config.json").read_text())["label2id"]
    )
    assert all(e.label in types for e in form.entities)
