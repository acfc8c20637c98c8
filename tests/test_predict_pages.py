"""Pages from annotation JSON get the words and boxes training gives the same file, in either box mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.data.funsd import read_funsd_form
from distill.errors import DistillError
from distill.predict.pages import PageJob, ReadOptions, list_pages, read_page
from tests.rendered_pages import annotated_form


@pytest.mark.parametrize("word_boxes", [False, True], ids=["segment-boxes", "word-boxes"])
def test_annotation_pages_match_the_training_reader(tmp_path: Path, word_boxes: bool) -> None:
    annotation = annotated_form(tmp_path)
    page = read_page(PageJob(annotation, 1, "json"), ReadOptions(word_boxes=word_boxes, want_image=True))
    form, _ = read_funsd_form(annotation, tmp_path / "images" / "form.png", word_boxes=word_boxes)
    assert page.error is None and page.words == form["tokens"] and page.boxes == form["bboxes"]
    own, _ = read_funsd_form(annotation, tmp_path / "images" / "form.png", word_boxes=True)
    assert page.word_boxes == own["bboxes"]  # the output's boxes are each word's own, in both modes
    assert page.image is not None and page.image.size == page.size


def test_listing_finds_pages_and_refuses_what_is_no_page(tmp_path: Path) -> None:
    annotated_form(tmp_path / "funsd", name="a")
    annotated_form(tmp_path / "funsd", seed=1, name="b")
    (tmp_path / "funsd" / "README.txt").write_text("not a page")
    listing = list_pages([tmp_path / "funsd"])
    assert [job.source.name for job in listing.jobs] == ["a.json", "b.json"]
    assert (listing.annotated_images, listing.ignored, listing.needs_ocr) == (2, 1, False)
    with pytest.raises(DistillError, match="README.txt: not a page file"):
        list_pages([tmp_path / "funsd" / "README.txt"])
    with pytest.raises(DistillError, match="missing.png: no such file"):
        list_pages([tmp_path / "missing.png"])
