"""Tesseract OCR through pytesseract: a page image in, its words with pixel boxes and segments out.

The same engine and call LayoutLMv3's own processor uses (`apply_ocr=True`: pytesseract's
`image_to_data`). FUNSD-trained models expect each word to carry its *segment's* box, so every word
also gets the index of its Tesseract line (block, paragraph and line number): the page builder
(pages.py) turns that into segment boxes, or keeps each word's own box under `--word-boxes`.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from distill.errors import DistillError

INSTALL_HINT = (
    "install Tesseract (Debian/Ubuntu: apt-get install tesseract-ocr; macOS: brew install tesseract) "
    "and pytesseract (pip install pytesseract); annotation JSON (words and boxes given) needs no OCR"
)
WORD_LEVEL = 5  # image_to_data's level of a word row (1 page, 2 block, 3 paragraph, 4 line)


@dataclass(frozen=True)
class OcrOptions:
    lang: str = "eng"  # Tesseract language(s), e.g. "eng" or "eng+deu"
    min_conf: float = 0.0  # words Tesseract is less confident of (0..100) are dropped
    config: str = ""  # extra Tesseract flags
    # Low-resolution scans read better enlarged (FUNSD's, about 100 dpi: see reports/ocr.md); boxes come
    # back in the page's own pixels either way. PDF pages are rendered at the resolution wanted instead.
    scale: float = 1.0
    image_dpi: int | None = None  # the resolution of images whose file records none (Tesseract guesses 70)


@dataclass(frozen=True)
class OcrWord:
    text: str
    box: tuple[int, int, int, int]  # pixels: x0, y0, x1, y1
    segment: int  # index of its Tesseract line on the page, in reading order
    conf: float


def _pytesseract() -> Any:
    try:
        import pytesseract
    except ImportError as err:
        raise DistillError(f"pytesseract is not installed: {INSTALL_HINT}") from err
    return pytesseract


def check_tesseract(lang: str) -> str:
    """Tesseract's version when it runs here and has every language of `lang`; one-line DistillError otherwise."""
    pytesseract = _pytesseract()
    try:
        version = str(pytesseract.get_tesseract_version())
        installed = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError as err:
        raise DistillError(f"the tesseract program was not found on PATH: {INSTALL_HINT}") from err
    missing = [code for code in lang.split("+") if code not in installed]
    if missing:
        raise DistillError(
            f"Tesseract has no data for language {'+'.join(missing)!r} (installed: "
            f"{', '.join(sorted(installed)) or 'none'}): install it, e.g. apt-get install "
            f"tesseract-ocr-{missing[0]}, or pass --lang"
        )
    return version.splitlines()[0]


def ocr_words(image: Any, options: OcrOptions, dpi: int | None = None) -> tuple[list[OcrWord], int]:
    """The words Tesseract reads on a PIL image (boxes in its pixels), and how many fell below the floor.

    `dpi`: the resolution a PDF page was rendered at; for an image, its file's own, else
    `options.image_dpi`. Images are enlarged by `options.scale` first (not PDF pages: `dpi` is theirs).
    """
    pytesseract = _pytesseract()
    scale = 1.0
    if dpi is None:
        recorded = image.info.get("dpi")
        dpi = round(float(recorded[0])) if recorded and float(recorded[0]) > 1 else options.image_dpi
        if options.scale != 1:
            scale = options.scale
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, resample=3)  # bicubic
            dpi = round(dpi * scale) if dpi else None
    config = " ".join(part for part in (f"--dpi {dpi}" if dpi else "", options.config) if part)
    try:
        with one_tesseract_thread():
            data = pytesseract.image_to_data(
                image, lang=options.lang, config=config, output_type=pytesseract.Output.DICT
            )
    except pytesseract.TesseractNotFoundError as err:
        raise DistillError(f"the tesseract program was not found on PATH: {INSTALL_HINT}") from err
    except pytesseract.TesseractError as err:
        raise DistillError(f"Tesseract failed: {str(err.message or err).strip()[:300]}") from err
    words: list[OcrWord] = []
    below = 0
    segments: dict[tuple[int, int, int, int], int] = {}
    for i, level in enumerate(data["level"]):
        text = str(data["text"][i]).strip()
        if int(level) != WORD_LEVEL or not text:
            continue
        conf = float(data["conf"][i])
        if conf < options.min_conf:
            below += 1
            continue
        key = (data["page_num"][i], data["block_num"][i], data["par_num"][i], data["line_num"][i])
        segment = segments.setdefault(key, len(segments))
        left, top = int(data["left"][i]), int(data["top"][i])
        right, bottom = left + int(data["width"][i]), top + int(data["height"][i])
        if scale != 1:  # back to the page's pixels, rounding outwards so the box still holds the word
            left, top = int(left / scale), int(top / scale)
            right, bottom = math.ceil(right / scale), math.ceil(bottom / scale)
        box = (left, top, right, bottom)
        words.append(OcrWord(text, box, segment, conf))
    return words, below


@contextmanager
def one_tesseract_thread() -> Iterator[None]:
    """One OpenMP thread for the tesseract programs started inside (a user's own OMP_THREAD_LIMIT is
    kept); pages run side by side in `--workers` processes instead. Tesseract's own threads help one
    page a little and fight each other across parallel pages (4.4x slower a page on 2 cores).

    Scoped, not set for good: pytesseract starts tesseract with this process's environment, and a
    limit left behind would reach every program started later, a training run's PyTorch among them.
    """
    before = os.environ.get("OMP_THREAD_LIMIT")
    if before is None:
        os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)


def available_cores() -> int:
    """The cores this process may run on: the default number of OCR workers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    """--workers, the same in every command that runs OCR."""
    parser.add_argument(
        "--workers",
        type=int,
        default=available_cores(),
        help="OCR processes side by side, one Tesseract thread each; the default is the machine's cores",
    )
