"""Inputs -> pages: which pages the files hold (listing), and each page's words and boxes (reading).

Listing is cheap and runs first, so a path that does not exist or a file of no known kind stops the
run before anything is written; a file that turns out bad (an encrypted PDF, an image that does
not decode) becomes a failed page that the run records and goes past. Reading a page is what the
OCR workers do: annotation JSON gives its words and boxes, an image or a PDF page goes through
Tesseract. Boxes end up 0..1000 by the page size, truncated, as the training readers make them, in
the box mode the model was trained with (segment boxes, or each word's own under --word-boxes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from distill.data.custom import _page_size
from distill.data.funsd import _read_segments, _segment_words, enclosing_box, normalize_box
from distill.errors import DistillError
from distill.predict.ocr import OcrOptions, OcrWord, ocr_words

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
PDF_SUFFIX = ".pdf"
JSON_SUFFIX = ".json"
KINDS_HINT = "annotation JSON (FUNSD layout), page images (PNG, JPEG, TIFF) or PDFs"

Box = list[int]


@dataclass(frozen=True)
class PageJob:
    """One page to read: light enough to send to a worker process."""

    source: Path
    page: int | None  # 1-based; None when the file failed before its pages were known
    kind: str  # json | image | pdf
    error: str | None = None  # the listing already found the file bad


@dataclass
class PageInput:
    """A page ready for the model: words, the boxes the model takes, each word's own box, the image."""

    job: PageJob
    words: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)  # what the model gets (segment or word boxes)
    word_boxes: list[Box] = field(default_factory=list)  # each word's own box, for the output
    image: Any = None  # PIL image where the model takes one (LayoutLMv3), else None
    size: tuple[int, int] | None = None  # page width, height in pixels
    ocr_seconds: float = 0.0
    read_seconds: float = 0.0  # decoding, rendering, parsing (OCR apart)
    error: str | None = None

    @property
    def where(self) -> str:
        """The page in a message: the file, and its page number where the file has several."""
        several = self.job.kind == "pdf" or self.job.source.suffix.lower() in (".tif", ".tiff")
        return f"{self.job.source}" + (f" page {self.job.page}" if several and self.job.page else "")


@dataclass(frozen=True)
class ReadOptions:
    ocr: OcrOptions = OcrOptions()
    dpi: int = 300  # PDF pages are rendered at this resolution
    word_boxes: bool = False  # each word's own box instead of its segment's
    want_image: bool = False  # the model takes the page image


@dataclass
class Listing:
    jobs: list[PageJob]
    ignored: int = 0  # files in the given directories of no known kind
    annotated_images: int = 0  # images a listed annotation JSON already stands for

    @property
    def needs_ocr(self) -> bool:
        return any(job.kind != "json" for job in self.jobs)


# --- listing -------------------------------------------------------------------------------


def list_pages(inputs: Sequence[str | Path]) -> Listing:
    """Every page of the given files and directories (searched recursively, in sorted order)."""
    files: list[Path] = []
    ignored = 0
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            known = [p for p in found if _kind(p)]
            ignored += len(found) - len(known)
            if not known:
                raise DistillError(f"no pages in this directory: expected {KINDS_HINT}", path)
            files += known
        elif path.is_file():
            if not _kind(path):
                raise DistillError(f"not a page file: expected {KINDS_HINT}", path)
            files.append(path)
        else:
            raise DistillError("no such file or directory", path)
    # A FUNSD-layout directory holds each page twice (annotations/X.json and images/X.png): the JSON
    # gives the words, the image is its page image, not a page of its own.
    annotated = {image.resolve() for f in files if _kind(f) == "json" for image in [_page_image(f)] if image}
    pages = [f for f in files if f.resolve() not in annotated or _kind(f) == "json"]
    jobs = [job for f in pages for job in _jobs(f)]
    return Listing(jobs, ignored, len(files) - len(pages))


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == JSON_SUFFIX:
        return "json"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix == PDF_SUFFIX:
        return "pdf"
    return None


def _jobs(path: Path) -> list[PageJob]:
    kind = _kind(path)
    assert kind is not None
    if kind == "pdf":
        try:
            count = pdf_page_count(path)
        except DistillError as err:
            return [PageJob(path, None, kind, _problem(err))]
        return [PageJob(path, i + 1, kind) for i in range(count)]
    if kind == "image" and path.suffix.lower() in (".tif", ".tiff"):  # a scan of several pages
        try:
            with Image.open(path) as image:
                count = getattr(image, "n_frames", 1)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            return [PageJob(path, 1, kind, f"image does not open: {err}")]
        return [PageJob(path, i + 1, kind) for i in range(count)]
    return [PageJob(path, 1, kind)]


def pdf_page_count(path: Path) -> int:
    pdf = _open_pdf(path)
    try:
        return len(pdf)
    finally:
        pdf.close()


def _open_pdf(path: Path) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as err:
        text = str(err)
        if "password" in text.lower():
            raise DistillError("PDF is encrypted (it needs a password): decrypt it first", path) from err
        raise DistillError(f"PDF does not open, corrupt or not a PDF ({text})", path) from err


def _problem(err: DistillError) -> str:
    """A DistillError's message without the file name the page record already carries."""
    text = str(err)
    prefix = f"{err.path}: " if err.path is not None else ""
    return text.removeprefix(prefix)


# --- reading -------------------------------------------------------------------------------


def read_page(job: PageJob, options: ReadOptions) -> PageInput:
    """A page's words and boxes; a problem with this page is kept in `error`, never raised."""
    page = PageInput(job)
    if job.error:
        page.error = job.error
        return page
    try:
        if job.kind == "json":
            _read_annotation(page, options)
        else:
            _read_scan(page, options)
    except DistillError as err:
        page.error = _problem(err)
    except Exception as err:  # a library failing on one odd page must not stop the others
        page.error = f"{type(err).__name__}: {str(err).strip()[:300]}"
    return page


def _read_annotation(page: PageInput, options: ReadOptions) -> None:
    """FUNSD-layout JSON: {"form": [{"words": [{"text", "box"}, ...]}, ...]}, labels not needed."""
    started = time.perf_counter()
    path = page.job.source
    segments = _read_segments(path)
    words: list[str] = []
    own: list[list[float]] = []
    given: list[list[float]] = []
    for index, segment in enumerate(segments):
        kept = [
            (text, box)
            for text, box in _segment_words(segment, path, f"segment {segment.get('id', index)}")
            if text.strip()
        ]
        if not kept:
            continue
        boxes = [box for _, box in kept]
        words += [text for text, _ in kept]
        own += boxes
        given += boxes if options.word_boxes else [enclosing_box(boxes)] * len(boxes)
    image_file = _page_image(path)
    size, _ = _page_size(path, image_file, own)
    page.words = words
    page.boxes = [normalize_box(b, size) for b in given]
    page.word_boxes = [normalize_box(b, size) for b in own]
    page.size = (int(size[0]), int(size[1]))
    if options.want_image and image_file is not None:
        page.image = _open_image(image_file, 0)
    page.read_seconds = time.perf_counter() - started
    if not words:
        raise DistillError("no text: the annotation has no words", path)


def _page_image(annotation: Path) -> Path | None:
    """The page image of an annotation: images/NAME.* beside annotations/ (FUNSD), or NAME.* beside it."""
    for folder in (annotation.parent.parent / "images", annotation.parent):
        for suffix in IMAGE_SUFFIXES:
            candidate = folder / f"{annotation.stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _read_scan(page: PageInput, options: ReadOptions) -> None:
    started = time.perf_counter()
    job = page.job
    dpi = None
    if job.kind == "pdf":
        dpi = options.dpi
        image = render_pdf_page(job.source, (job.page or 1) - 1, dpi)
    else:
        image = _open_image(job.source, (job.page or 1) - 1)
    page.size = image.size
    page.read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    words, below = ocr_words(image, options.ocr, dpi)
    page.ocr_seconds = time.perf_counter() - started
    fill_from_ocr(page, words, image.size, options.word_boxes)
    if options.want_image:
        page.image = image
    if not words:
        floor = f" ({below} below the confidence floor --min-conf {options.ocr.min_conf:g})" if below else ""
        raise DistillError(f"no text: OCR found no words on this page{floor}", job.source)


def fill_from_ocr(page: PageInput, words: list[OcrWord], size: tuple[int, int], word_boxes: bool) -> None:
    """Words and boxes from OCR: each word's own box, and its line's box unless `word_boxes`."""
    by_segment: dict[int, list[list[float]]] = {}
    for word in words:
        by_segment.setdefault(word.segment, []).append(list(word.box))
    union = {s: enclosing_box(boxes) for s, boxes in by_segment.items()}
    page.words = [w.text for w in words]
    page.word_boxes = [normalize_box(list(w.box), size) for w in words]
    page.boxes = (
        list(page.word_boxes) if word_boxes else [normalize_box(union[w.segment], size) for w in words]
    )


def _open_image(path: Path, frame: int) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.seek(frame)
            image.load()
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError) as err:
        raise DistillError(f"image does not open: {err}", path) from err


def render_pdf_page(path: Path, index: int, dpi: int) -> Image.Image:
    """One PDF page as an RGB image at `dpi` (PDF units are 1/72 inch)."""
    pdf = _open_pdf(path)
    try:
        page = pdf[index]
        try:
            return page.render(scale=dpi / 72).to_pil().convert("RGB")
        finally:
            page.close()
    finally:
        pdf.close()
