"""The work of `python -m distill.predict`: inputs checked, model chosen, pages streamed to JSON lines.

Everything that can refuse the run does so before anything is written: the inputs exist and are
of a known kind, the model directory is one, Tesseract runs (when a page needs OCR). A bad page
after that is recorded in its line and counted; `strict` makes it fatal (and no output appears).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

from tqdm.auto import tqdm

from distill.errors import DistillError
from distill.hardware import position_limit
from distill.predict.loading import Serving, load_predictor, serving
from distill.predict.ocr import OcrOptions, check_tesseract
from distill.predict.output import json_lines, page_record
from distill.predict.pages import Listing, ReadOptions, list_pages
from distill.predict.predictor import Predictor
from distill.predict.stream import ModelClock, PageReader, label_pages
from distill.predict.summary import Totals


@dataclass
class PredictOptions:
    model: str
    inputs: list[str]
    output: str | None = None  # None: JSON lines on stdout
    lang: str = "eng"
    dpi: int = 300
    min_conf: float = 0.0
    image_dpi: int | None = None
    ocr_scale: float = 1.0
    word_boxes: bool | None = None  # None: as the model's run was trained
    workers: int = 1
    batch_size: int = 8
    pages_per_step: int = 16
    max_length: int | None = None  # None: the run's
    stride: int | None = None
    strict: bool = False


class StrictStop(DistillError):
    """A page failed under --strict."""


def model_positions(model_dir: Path) -> int | None:
    """Sub-tokens one window of this model may hold, from the config.json beside it (None: unknown)."""
    file = model_dir / "config.json"
    if not file.is_file():
        return None
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DistillError(f"not valid JSON: {err}", file) from err
    return position_limit(SimpleNamespace(**values)) if isinstance(values, dict) else None


def check_settings(options: PredictOptions, served: Serving, max_length: int, stride: int) -> None:
    """What would fail only after pages were read (or at the very end, for --output) is refused first."""
    if options.output is not None and Path(options.output).is_dir():
        raise DistillError("--output names a directory: give the JSON lines file to write", options.output)
    if stride < 0:
        raise DistillError(f"--stride must not be negative, got {stride}")
    if stride >= max_length:
        raise DistillError(f"--stride ({stride}) must be smaller than --max-length ({max_length})")
    limit = model_positions(served.path)
    if limit is not None and max_length > limit:
        raise DistillError(
            f"--max-length {max_length} is beyond the {limit} positions this model has: give at most {limit}",
            served.path,
        )


def predict_files(options: PredictOptions, log: object = sys.stderr) -> Totals:
    listing = list_pages(options.inputs)
    served = serving(options.model)
    word_boxes = served.word_boxes if options.word_boxes is None else options.word_boxes
    max_length = options.max_length or served.max_length
    stride = served.stride if options.stride is None else options.stride
    check_settings(options, served, max_length, stride)
    ocr = OcrOptions(options.lang, options.min_conf, scale=options.ocr_scale, image_dpi=options.image_dpi)
    engine = f"Tesseract {check_tesseract(options.lang)}" if listing.needs_ocr else None
    read = ReadOptions(ocr=ocr, dpi=options.dpi, word_boxes=word_boxes)
    totals = Totals()
    # The workers start before the model loads (forked before any model thread exists).
    with PageReader(read, options.workers if listing.needs_ocr else 1) as reader:
        predictor = load_predictor(served.path, max_length, stride, options.batch_size)
        reader.options = replace(read, want_image=predictor.encoder.image_processor is not None)
        plan = describe(served, predictor, word_boxes, options, listing, engine)
        for line in plan:
            print(line, file=log, flush=True)
        totals.settings = plan[1]
        clock = ModelClock()
        started = time.perf_counter()
        # Under --strict nothing is written unless every page passes: stdout is held back too.
        with json_lines(options.output, hold=options.strict) as write:
            results = label_pages(predictor, reader.read(listing.jobs), options.pages_per_step, clock)
            for result in tqdm(results, total=len(listing.jobs), desc="pages", unit="page", disable=None):
                totals.add(result)
                page = result.page
                if page.error is not None:
                    if options.strict:
                        raise StrictStop(f"{page.error} (--strict: stopped, no output written)", page.where)
                    tqdm.write(f"failed: {page.where}: {page.error}", file=log)
                write(page_record(result))
        totals.model_seconds = clock.seconds
        totals.wall_seconds = time.perf_counter() - started
    return totals


def describe(
    served: Serving,
    predictor: Predictor,
    word_boxes: bool,
    options: PredictOptions,
    listing: Listing,
    engine: str | None,
) -> list[str]:
    """What the run is about to do: the model and how it was chosen, its windows and boxes, the pages."""
    encoder = predictor.encoder
    trained = "word boxes" if served.word_boxes else "segment boxes"
    mode = (
        "word boxes (each word's own box)"
        if word_boxes
        else "segment boxes (Tesseract lines; JSON: its segments)"
    )
    if options.word_boxes is None:
        why = f"as the model was trained ({served.settings_from})"
    else:
        flag = "--word-boxes" if word_boxes else "--no-word-boxes"
        why = f"{flag}; the model was trained with {trained} ({served.settings_from})"
    uses = "" if encoder.use_boxes else "; this model reads no boxes, they only place the entities"
    windows = f"{encoder.max_length}/{encoder.stride}"
    given = " (given)" if options.max_length or options.stride is not None else f" ({served.settings_from})"
    files = len({job.source for job in listing.jobs})
    pages = f"pages: {len(listing.jobs)} from {files} files"
    if engine:
        pages += f"; OCR: {engine}, language {options.lang}, PDFs at {options.dpi} dpi"
        pages += f", confidence floor {options.min_conf:g}" if options.min_conf else ""
        pages += f", images at {options.image_dpi} dpi unless they say" if options.image_dpi else ""
        pages += f", images enlarged ×{options.ocr_scale:g}" if options.ocr_scale != 1 else ""
        pages += f", {options.workers} worker processes" if options.workers > 1 else ""
    skipped = []
    if listing.annotated_images:
        skipped.append(f"{listing.annotated_images} images read as their annotation JSON's page image")
    if listing.ignored:
        skipped.append(f"{listing.ignored} files of another kind ignored")
    if skipped:
        pages += f" ({'; '.join(skipped)})"
    return [
        f"model: {served.path} ({served.chosen})",
        f"windows: max length/stride {windows}{given}; boxes: {mode}, {why}{uses}",
        pages,
    ]
