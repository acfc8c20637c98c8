"""OCR views of training pages (issues 28 and 29): Tesseract's words as forms, tagged from the gold words."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from distill.data.funsd import read_funsd_split
from distill.predict import ocr_views as views
from distill.predict.ocr import OcrOptions
from distill.schema import LABELS, features
from tests.rendered_pages import annotated_form

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("tesseract") is None, reason="tesseract is not installed"
)


def rendered_forms(folder: Path, count: int = 3) -> tuple[datasets.Dataset, list]:
    for seed in range(count):
        annotated_form(folder, seed=seed, name=f"form{seed}")
    segments, _ = read_funsd_split(folder, word_boxes=False)
    words, _ = read_funsd_split(folder, word_boxes=True)
    columns = {name: [form[name] for form in segments] for name in features()}
    return datasets.Dataset.from_dict(columns, features=features()), [w["bboxes"] for w in words]


def test_entity_ids_follow_b_and_i_tags() -> None:
    assert views.entity_ids(["O", "B-QUESTION", "I-QUESTION", "B-ANSWER", "I-ANSWER", "O", "I-ANSWER"]) == [
        None, 0, 0, 1, 1, None, 2,
    ]  # fmt: skip


def test_each_ocr_word_takes_its_gold_entity_and_a_line_is_one_entity(tmp_path: Path) -> None:
    forms, gold_boxes = rendered_forms(tmp_path)
    out = views.ocr_views(forms, OcrOptions(), word_boxes=False, gold_word_boxes=gold_boxes)
    assert out["id"] == [f"{i}#ocr" for i in forms["id"]]
    for view, form in zip(out, forms, strict=True):
        tags = [LABELS[t] for t in view["ner_tags"]]
        gold = {w.lower() for w in form["tokens"]}
        read_right = [w for w in view["tokens"] if w.lower() in gold]
        assert len(read_right) >= 0.8 * len(form["tokens"]), "Tesseract reads the clean page"
        # annotated_form makes each rendered line one entity: its type is the line's (header, question...).
        once = {w for w in form["tokens"] if form["tokens"].count(w) == 1}  # a word on one line only
        gold_types = {
            w: LABELS[t][2:] for w, t in zip(form["tokens"], form["ner_tags"], strict=True) if w in once
        }
        for word, tag in zip(view["tokens"], tags, strict=True):
            if word in gold_types:
                assert tag[2:] == gold_types[word], (word, tag)
        starts = [i for i, tag in enumerate(tags) if tag.startswith("B-")]
        entity_lines = {tuple(b) for b, tag in zip(view["bboxes"], tags, strict=True) if tag != "O"}
        assert len(starts) == len(entity_lines) >= 3, "one B- per Tesseract line of an entity (a segment)"


def test_workers_and_the_cache_give_the_same_words_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forms, _ = rendered_forms(tmp_path / "forms", count=2)
    one = views.read_pages(forms, OcrOptions(), workers=1, cache=tmp_path / "cache")
    two = views.read_pages(forms, OcrOptions(), workers=2)
    assert one == two and all(page and page[0] for page in one)

    def no_tesseract(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached page was read again")

    monkeypatch.setattr(views, "ocr_words", no_tesseract)
    assert views.read_pages(forms, OcrOptions(), workers=1, cache=tmp_path / "cache") == one


def test_a_run_distils_on_the_ocr_views_of_its_training_pages_only(tmp_path: Path) -> None:
    import json

    from tests.conftest import run_cli

    for split, seeds in (("training_data", range(4)), ("testing_data", range(10, 12))):
        for seed in seeds:
            annotated_form(tmp_path / "funsd" / split, seed=seed, name=f"form{seed}")
    args = ["--preset", "quickstart", "--data", str(tmp_path / "funsd"), "--epochs", "1", "--transfer-ocr", "1",
            "--transfer-copies", "1", "--output-dir", "run"]  # fmt: skip
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    record = metrics["transfer_set"]
    assert record["ocr"] == "1" and record["forms"] == 2 * metrics["train_forms"] == 8, (
        "a copy and a view each"
    )
    cached = list((tmp_path / "run" / "ocr-cache").glob("*.json"))
    assert len(cached) == 4, "Tesseract read the 4 training pages, never a test page"
    training_md = (tmp_path / "reports" / "training.md").read_text()
    assert "Tesseract's reading of each training page at scale 1" in training_md
