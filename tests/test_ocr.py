"""Real Tesseract on pages rendered with known words: the words, their boxes, their segments."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from distill.errors import DistillError
from distill.predict.ocr import OcrOptions, check_tesseract, ocr_words
from distill.predict.pages import PageInput, PageJob, ReadOptions, fill_from_ocr, read_page
from tests.rendered_pages import fits, inside, random_lines, render_page

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Tesseract not installed (apt-get install tesseract-ocr)"
)
SLACK = 2  # pixels: Tesseract's box may reach a pixel past the anti-aliased ink


@pytest.mark.parametrize("seed", [0, 1])
def test_rendered_words_come_back_inside_their_true_boxes(seed: int) -> None:
    image, truth = render_page(random_lines(seed))
    found, _ = ocr_words(image, OcrOptions())
    hits = [t for t in truth if any(w.text == t.text and fits(w.box, t.box, SLACK) for w in found)]
    assert len(hits) >= 0.95 * len(truth), (
        f"{len(hits)}/{len(truth)} words read inside their boxes; missed "
        f"{[t.text for t in truth if t not in hits]}, read {[(w.text, w.box) for w in found]}"
    )


def test_segments_are_tesseract_lines_and_boxes_are_normalised() -> None:
    lines = [["name", "address", "phone"], ["total", "12345"], ["signature", "approved", "date"]]
    image, truth = render_page(lines)
    found, _ = ocr_words(image, OcrOptions())
    assert [w.text for w in found] == [t.text for t in truth]
    page = PageInput(PageJob(Path("page.png"), 1, "image"))
    fill_from_ocr(page, found, image.size, word_boxes=False)
    width, height = image.size
    for word, own in zip(found, page.word_boxes, strict=True):
        x0, y0, x1, y1 = word.box
        assert own == [
            int(1000 * x0 / width),
            int(1000 * y0 / height),
            int(1000 * x1 / width),
            int(1000 * y1 / height),
        ]
    # Segment boxes: one per line, around the line's words; each word's box lies inside its line's.
    by_line: dict[int, set[tuple[int, ...]]] = {}
    for t, box, own in zip(truth, page.boxes, page.word_boxes, strict=True):
        by_line.setdefault(t.line, set()).add(tuple(box))
        assert inside(tuple(own), tuple(box), 0)
    assert all(len(boxes) == 1 for boxes in by_line.values())
    assert len({next(iter(b)) for b in by_line.values()}) == len(lines)
    fill_from_ocr(page, found, image.size, word_boxes=True)
    assert page.boxes == page.word_boxes


def test_confidence_floor_and_a_page_without_text(tmp_path: Path) -> None:
    image, _ = render_page([["invoice", "total"]])
    image.save(tmp_path / "page.png")
    options = ReadOptions(ocr=OcrOptions(min_conf=101))  # above any confidence: every word dropped
    page = read_page(PageJob(tmp_path / "page.png", 1, "image"), options)
    assert page.words == [] and "no text" in page.error and "2 below the confidence floor" in page.error
    page = read_page(PageJob(tmp_path / "page.png", 1, "image"), ReadOptions())
    assert page.error is None and page.words == ["invoice", "total"] and page.ocr_seconds > 0


def test_a_language_tesseract_lacks_is_one_line() -> None:
    assert check_tesseract("eng")[:1].isdigit()  # the version, e.g. 5.3.0
    with pytest.raises(DistillError, match=r"'zzz'.*apt-get install tesseract-ocr-zzz"):
        check_tesseract("eng+zzz")


def test_enlarged_ocr_gives_boxes_in_the_page_pixels() -> None:
    image, truth = render_page(random_lines(3, lines=4), size=18, width=700, margin=30)
    found, _ = ocr_words(image, OcrOptions(scale=2.5, image_dpi=96))
    hits = [t for t in truth if any(w.text == t.text and fits(w.box, t.box, SLACK) for w in found)]
    assert len(hits) >= 0.9 * len(truth), [(w.text, w.box) for w in found]


def test_tesseract_runs_one_thread_even_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 29: `--workers 1` read pages in-process with Tesseract's default OpenMP threads (4.4x
    slower on 2 cores). The tesseract program's own threads are counted while it reads."""
    import threading
    import time

    import psutil

    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    image, _ = render_page(random_lines(0, lines=20))
    image = image.resize((image.width * 2, image.height * 2))  # long enough to be seen running
    counts: list[int] = []
    done = threading.Event()

    def watch() -> None:
        me = psutil.Process()
        while not done.is_set():
            for child in me.children(recursive=True):
                try:
                    if child.name() == "tesseract":
                        counts.append(child.num_threads())
                except psutil.Error:
                    pass
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        ocr_words(image, OcrOptions())
    finally:
        done.set()
        watcher.join()
    assert counts, "the tesseract process was never seen running"
    assert max(counts) == 1, f"tesseract ran with up to {max(counts)} threads"
    # The limit is the tesseract program's alone: left in this process's environment, it reached every
    # later training subprocess of the suite.
    assert "OMP_THREAD_LIMIT" not in os.environ


def test_a_users_own_thread_limit_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from distill.predict.ocr import one_tesseract_thread

    monkeypatch.setenv("OMP_THREAD_LIMIT", "2")
    with one_tesseract_thread():
        assert os.environ["OMP_THREAD_LIMIT"] == "2"
    assert os.environ["OMP_THREAD_LIMIT"] == "2"
