"""`python -m distill.predict MODEL INPUT... [--output FILE.jsonl]`: label scanned pages, PDFs or annotation JSON.

MODEL: a model directory (a run's student/ or teacher/), an exported variant (onnx/student/int8),
or a run directory (its student's recommended CPU variant). INPUT: files or directories of
FUNSD-layout annotation JSON, page images (PNG, JPEG, TIFF) and PDFs. One JSON line per page.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from distill.console import quiet_library_noise
from distill.errors import DistillError
from distill.predict.ocr import add_workers_option


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown, except None and False ones (their help says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill.predict",
        description="Label the words of pages (OCR with Tesseract where no words are given) and print "
        "one JSON line per page: words with boxes, labels and scores, and the entities they spell.",
        formatter_class=_Help,
    )
    parser.add_argument("model", metavar="MODEL", help="model directory, exported variant, or run directory")
    parser.add_argument(
        "inputs", metavar="INPUT", nargs="+", help="annotation JSON, images, PDFs, or directories"
    )
    parser.add_argument(
        "--output", "-o", default=None, help="JSON lines file, written whole at the end (default: stdout)"
    )
    parser.add_argument("--lang", default="eng", help="Tesseract language(s), e.g. eng or eng+deu")
    parser.add_argument("--dpi", type=int, default=300, help="resolution PDF pages are rendered at for OCR")
    parser.add_argument(
        "--image-dpi",
        type=int,
        default=None,
        help="resolution of images whose file records none (Tesseract guesses 70)",
    )
    parser.add_argument(
        "--ocr-scale",
        type=float,
        default=1.0,
        help="enlarge images this much before OCR (low-resolution scans)",
    )
    parser.add_argument(
        "--min-conf", type=float, default=0.0, help="drop OCR words Tesseract is less confident of (0..100)"
    )
    parser.add_argument(
        "--word-boxes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the model each word's own box instead of its segment's (default: as the model was trained)",
    )
    add_workers_option(parser)
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    parser.add_argument(
        "--pages-per-step", type=int, default=16, help="pages whose windows share the model's batches"
    )
    parser.add_argument(
        "--max-length", type=int, default=None, help="sub-tokens per window (default: the run's)"
    )
    parser.add_argument(
        "--stride", type=int, default=None, help="sub-tokens shared by windows (default: the run's)"
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first bad page, writing nothing")
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM unwinds like Ctrl-C: the temporary output is removed, the workers stopped.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = next(
        (
            f"{name} must be positive, got {value}"
            for name, value in (
                ("--workers", args.workers),
                ("--batch-size", args.batch_size),
                ("--dpi", args.dpi),
                ("--image-dpi", args.image_dpi),
                ("--ocr-scale", args.ocr_scale),
                ("--pages-per-step", args.pages_per_step),
            )
            if value is not None and value <= 0
        ),
        None,
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    quiet_library_noise()
    signal.signal(signal.SIGTERM, _interrupt)
    from distill.predict.command import PredictOptions, predict_files

    options = PredictOptions(
        model=args.model,
        inputs=args.inputs,
        output=None if args.output in (None, "-") else args.output,
        lang=args.lang,
        dpi=args.dpi,
        min_conf=args.min_conf,
        image_dpi=args.image_dpi,
        ocr_scale=args.ocr_scale,
        word_boxes=args.word_boxes,
        workers=args.workers,
        batch_size=args.batch_size,
        pages_per_step=args.pages_per_step,
        max_length=args.max_length,
        stride=args.stride,
        strict=args.strict,
    )
    try:
        totals = predict_files(options)
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no output written", file=sys.stderr)
        return 130
    for line in totals.lines(options.workers):
        print(line, file=sys.stderr)
    if options.output:
        print(f"wrote {options.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
