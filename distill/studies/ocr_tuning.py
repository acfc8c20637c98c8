"""`python -m distill.studies.ocr_tuning`: Tesseract settings measured on FUNSD's *training* pages.

Which page segmentation mode and scale read the most words right, and at what cost a page per
core, chosen on the training split's gold words only: this study has no option that reads a test
page, so a default chosen here is never tuned on the forms the reports score. For each setting:

- covered: the gold words some OCR word covers (distill/predict/ocr_align.py's overlap rule);
- read right: covered, and the covering word reads the same (case and edge punctuation aside);
- s/page per core: Tesseract's seconds a page in one process with one thread (`--workers` run side
  by side, one core each).

The recommended setting is the one that reads the most words right within `--budget` s/page per
core. Writes <report-dir>/ocr-tuning.md and ocr-tuning.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill import atomic
from distill.commands import portable_command
from distill.console import quiet_library_noise
from distill.errors import DistillError
from distill.predict.ocr import OcrOptions, add_workers_option, check_tesseract
from distill.studies.ocr import agreement, read_forms

REPORT, RESULTS = "ocr-tuning.md", "ocr-tuning.json"
TRAIN_DIR = "training_data"  # the only split read here (see the module docstring)
DEFAULT_SETTINGS = ("psm3:1", "psm3:2", "psm11:1", "psm11:2", "psm11:3")


def parse_setting(text: str) -> tuple[int, float]:
    """`psm11:2` -> (11, 2.0): Tesseract's page segmentation mode and the enlargement factor."""
    try:
        mode, scale = text.removeprefix("psm").split(":")
        psm, factor = int(mode), float(scale)
    except ValueError as err:
        raise DistillError(f"--settings takes psmN:SCALE (e.g. psm11:2), got {text!r}") from err
    if not 0 <= psm <= 13 or factor <= 0:
        raise DistillError(f"--settings {text!r}: psm 0..13 and a positive scale")
    return psm, factor


def measure(
    data: Path, settings: Sequence[str], workers: int, forms: int | None, lang: str
) -> list[dict[str, Any]]:
    rows = []
    for text in settings:
        psm, scale = parse_setting(text)
        options = OcrOptions(lang, config=f"--psm {psm}", scale=scale)
        scanned = read_forms(data, options, workers, forms, split_dir=TRAIN_DIR)
        seen = agreement(scanned)
        rows.append({
            "setting": text, "psm": psm, "scale": scale, "pages": len(scanned),
            "covered": seen.matched / max(1, seen.gold), "read_right": seen.same_text / max(1, seen.gold),
            "seconds_per_page": sum(f.ocr_seconds for f in scanned) / max(1, len(scanned)),
        })  # fmt: skip
    return rows


def recommended(rows: Sequence[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """The setting that reads the most gold words right within the time budget (None: none fits)."""
    fitting = [r for r in rows if r["seconds_per_page"] <= budget]
    return max(fitting, key=lambda r: (r["read_right"], -r["seconds_per_page"]), default=None)


def render(results: dict[str, Any]) -> str:
    best = results["recommended"]
    lines = [
        "# Tesseract settings, measured on FUNSD's training pages",
        "",
        f"Written by `{results['command']}` on {results['machine']}; Tesseract {results['tesseract']}, "
        f"{results['rows'][0]['pages'] if results['rows'] else 0} training pages, `--workers {results['workers']}` "
        "(one Tesseract thread per process). No test page is read.",
        "",
        "| setting | gold words covered | read right | s/page per core |",
        "|---|---:|---:|---:|",
    ]
    for r in results["rows"]:
        mark = " (recommended)" if best and r["setting"] == best["setting"] else ""
        lines.append(f"| psm {r['psm']}, ×{r['scale']:g}{mark} | {100 * r['covered']:.1f}% | "
                     f"{100 * r['read_right']:.1f}% | {r['seconds_per_page']:.2f} |")  # fmt: skip
    lines.append("")
    if best:
        lines.append(f"Recommended within {results['budget']:g} s/page per core: psm {best['psm']}, ×{best['scale']:g} "
                     f"({100 * best['read_right']:.1f}% of the gold words read right).")  # fmt: skip
    else:
        lines.append(f"No setting fits {results['budget']:g} s/page per core.")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill.studies.ocr_tuning",
        description="Tesseract settings measured on FUNSD's training pages (never the test split).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", default="../shared/data/funsd", help="FUNSD release directory")
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), help="psmN:SCALE each")
    parser.add_argument(
        "--budget", type=float, default=1.0, help="s/page per core the recommendation may take"
    )
    parser.add_argument("--forms", type=int, default=None, help="only the first N training forms")
    parser.add_argument("--lang", default="eng", help="Tesseract language")
    parser.add_argument("--report-dir", default="reports", help="where ocr-tuning.md and .json go")
    add_workers_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from distill.machine import machine_summary

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    quiet_library_noise()
    named = (
        {"$OUT": str(Path(args.report_dir).expanduser())}
        if str(args.report_dir).startswith(("/", "~"))
        else {}
    )
    try:
        for text in args.settings:
            parse_setting(text)  # every setting checked before the OCR's minutes are spent
        tesseract = check_tesseract(args.lang)
        rows = measure(Path(args.data), args.settings, args.workers, args.forms, args.lang)
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = {
        "command": portable_command(["python", "-m", "distill.studies.ocr_tuning", *argv], named),
        "machine": machine_summary(), "tesseract": tesseract, "workers": args.workers,
        "budget": args.budget, "rows": rows, "recommended": recommended(rows, args.budget),
    }  # fmt: skip
    report_dir = Path(args.report_dir)
    atomic.write_json(report_dir / RESULTS, results)
    path = atomic.write_text(report_dir / REPORT, render(results))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
