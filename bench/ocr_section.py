"""benchmark.md's section on pages from the image to entities, OCR included (bench/test_ocr_end_to_end.py).

The speed-up with OCR is the teacher's PyTorch pass time over each row's, per page, both OCR
included; beside it the speed-up the same models reach without OCR (the end-to-end rows over the
test split's words), when those ran: the gap between the two is what OCR takes back.
"""

from __future__ import annotations

from typing import Any

KIND = "ocr-e2e"
BASELINE = ("teacher", "torch-fp32")


def ocr_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("kind") == KIND]


def _per_page(row: dict[str, Any]) -> float:
    return row["p50_s"] / row["pages"]


def _model_only(rows: list[dict[str, Any]], model: str, runtime: str) -> float | None:
    """Seconds per form of the end-to-end (words given) row of this model and runtime, if it ran."""
    for r in rows:
        if r.get("kind") == "e2e" and r["model"] == model and r["runtime"] == runtime and r.get("forms"):
            return r["p50_s"] / r["forms"]
    return None


def section(ocr: list[dict[str, Any]], model_rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: a headline, the table, how it was measured ([] when no OCR case ran)."""
    if not ocr:
        return []
    base = next((r for r in ocr if (r["model"], r["runtime"]) == BASELINE), None)
    base_alone = _model_only(model_rows, *BASELINE)
    header = [
        "model",
        "runtime",
        "pages",
        "rounds",
        "p50 per page",
        "pages/s",
        "OCR share",
        "model share",
        "speed-up with OCR",
        "speed-up without OCR",
        "entities/page",
    ]
    body = []
    for r in ocr:
        per_page = _per_page(r)
        with_ocr = _per_page(base) / per_page if base else None
        alone = _model_only(model_rows, r["model"], r["runtime"])
        without = base_alone / alone if base_alone and alone else None
        body.append(
            [
                r["model"],
                r["runtime_label"],
                str(r["pages"]),
                str(r["rounds"]),
                f"{per_page:.2f} s",
                f"{1 / per_page:.2f}",
                f"{r['ocr_share']:.0%}",
                f"{r['model_share']:.0%}",
                f"{with_ocr:.2f}×" if with_ocr else "–",
                f"{without:.2f}×" if without else "–",
                f"{r['entities'] / r['pages']:.1f}",
            ]
        )
    lines = ["", "## From the page image to entities (OCR included)", ""]
    students = [r for r in ocr if r["model"] == "student"]
    if base and students:
        best = min(students, key=_per_page)
        gain = _per_page(base) / _per_page(best)
        alone = _model_only(model_rows, best["model"], best["runtime"])
        without = f" (×{base_alone / alone:.2f} without OCR)" if base_alone and alone else ""
        saved = 1 - _per_page(best) / _per_page(base)
        lines.append(
            f"- With OCR counted, the student ({best['runtime_label']}) labels {1 / _per_page(best):.2f} pages/s "
            f"against the teacher's {1 / _per_page(base):.2f} (PyTorch fp32): ×{gain:.2f}{without}; it removes "
            f"{saved:.0%} of a page's cost, and OCR takes {best['ocr_share']:.0%} of what is left."
        )
        lines.append("")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    first = ocr[0]
    lines += [
        "",
        f"Each round: the first {first['pages']} test pages as PNG files -> Tesseract "
        f"({first.get('tesseract', '?')}, one process) -> "
        f"{'word' if first.get('word_boxes') else 'segment'} boxes as the run trained -> the model -> entities, "
        "through `distill.predict`'s own reader and stream; the OCR and model shares are of the rounds' wall time "
        "(the rest: decoding the images, boxes, entities).",
    ]
    return lines
