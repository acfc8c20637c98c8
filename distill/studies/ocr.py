"""`python -m distill.studies.ocr MODEL...`: entity F1 from Tesseract's words on FUNSD's test scans.

The number a user with scanned forms gets, beside the gold-words number papers quote. Tesseract
reads every test image once (`--workers N` side by side); each MODEL (any model directory, exported
variant or run directory, as `python -m distill.predict` takes) labels both the gold words and the
OCR words, each in the box mode its run was trained with; the OCR words' tags are carried onto the
gold words (distill/predict/ocr_align.py) and both are scored by the same entity F1 (seqeval, words).
Writes <report-dir>/ocr.md and ocr.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from distill import atomic
from distill.commands import placeholder_note, portable_command
from distill.console import quiet_library_noise
from distill.errors import DistillError
from distill.labels import tag_type
from distill.metrics import score_tags
from distill.predict.ocr import (
    OcrOptions,
    OcrWord,
    add_workers_option,
    check_tesseract,
    ocr_words,
)
from distill.predict.ocr_align import WordAgreement, match_words, project_tags, word_agreement
from distill.predict.pages import PageInput, PageJob, fill_from_ocr
from distill.schema import LABELS

REPORT = "ocr.md"
RESULTS = "ocr.json"
TEST_DIR = "testing_data"


@dataclass
class ScannedForm:
    """A gold test form and what Tesseract read on its image."""

    id: str
    image: Path
    words: list[str]  # gold
    word_boxes: list[list[int]]  # gold, each word's own box (0..1000)
    segment_boxes: list[list[int]]  # gold, each word's segment box (0..1000)
    tags: list[str]  # gold
    ocr: list[OcrWord]
    size: tuple[int, int]
    ocr_seconds: float


def _ocr_file(args: tuple[Path, OcrOptions]) -> tuple[list[OcrWord], tuple[int, int], float]:
    path, options = args
    with Image.open(path) as image:
        page = image.convert("RGB")
    started = time.perf_counter()
    words, _ = ocr_words(page, options)
    return words, page.size, time.perf_counter() - started


def read_forms(
    data: Path, options: OcrOptions, workers: int, limit: int | None, split_dir: str = TEST_DIR
) -> list[ScannedForm]:
    """A split's gold words (both box modes) and Tesseract's reading of each image (the test split's
    by default; the OCR tuning reads the training split's, distill/studies/ocr_tuning.py)."""
    from distill.data.funsd import read_funsd_split

    split = data / split_dir
    words, _ = read_funsd_split(split, word_boxes=True)
    segments, _ = read_funsd_split(split, word_boxes=False)
    words, segments = words[:limit], segments[:limit]
    jobs = [(Path(f["image"]), options) for f in words]
    if workers > 1:
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        )
        with context.Pool(workers) as pool:
            read = list(tqdm(pool.imap(_ocr_file, jobs), total=len(jobs), desc="OCR", disable=None))
    else:
        read = [_ocr_file(job) for job in tqdm(jobs, desc="OCR", disable=None)]
    return [
        ScannedForm(
            w["id"],
            Path(w["image"]),
            list(w["tokens"]),
            w["bboxes"],
            s["bboxes"],
            [LABELS[t] for t in w["ner_tags"]],
            ocr,
            size,
            seconds,
        )
        for w, s, (ocr, size, seconds) in zip(words, segments, read, strict=True)
    ]


def setting_name(scale: float, image_dpi: int | None) -> str:
    """An OCR setting in a few words, as the report's rows name it."""
    dpi = f", {image_dpi * scale:g} dpi" if image_dpi else ""
    return ("as is" if scale == 1 else f"enlarged ×{scale:g}") + dpi


def score_model(
    model: str, readings: dict[str, list[ScannedForm]], data: Path, whole_split: bool
) -> dict[str, Any]:
    """One model's F1 on the gold words and from each OCR reading's words, and its time on the OCR pages."""
    from distill.predict.loading import load_predictor, serving

    served = serving(model)
    predictor = load_predictor(served.path)
    forms = next(iter(readings.values()))  # the gold words are the same in every reading
    types = sorted({t for form in forms for tag in form.tags if (t := tag_type(tag))})
    model_types = sorted({t for label in predictor.labels if (t := tag_type(label))})
    if model_types != types:
        raise DistillError(f"the model's entity types {model_types} are not the data's {types}", served.path)
    images = predictor.encoder.image_processor is not None
    boxes = "word_boxes" if served.word_boxes else "segment_boxes"

    def image(form: ScannedForm) -> Any:
        return Image.open(form.image).convert("RGB") if images else None

    gold = [f.tags for f in forms]
    gold_pred = predictor.predict_many(
        {"tokens": f.words, "bboxes": getattr(f, boxes), "image": image(f)} for f in forms
    )
    result: dict[str, Any] = {
        "model": model,
        "served": str(served.path),
        "chosen": served.chosen,
        "boxes": "word" if served.word_boxes else "segment",
        "settings_from": served.settings_from,
        "gold_words": score_tags(gold, [[w.label for w in p] for p in gold_pred], types),
        "run_f1": run_f1(served.path, served.settings_from, data) if whole_split else None,
        "ocr": {},
        "model_seconds": {},
    }
    for setting, scanned in readings.items():
        pages = []
        for form in scanned:
            page = PageInput(PageJob(form.image, 1, "image"))
            fill_from_ocr(page, form.ocr, form.size, served.word_boxes)
            pages.append(page)
        started = time.perf_counter()
        ocr_pred = predictor.predict_many(
            {"tokens": p.words, "bboxes": p.boxes, "image": image(f)}
            for p, f in zip(pages, scanned, strict=True)
        )
        result["model_seconds"][setting] = time.perf_counter() - started
        projected = [
            project_tags(match_words(form.word_boxes, page.word_boxes), [w.label for w in predicted])
            for form, page, predicted in zip(scanned, pages, ocr_pred, strict=True)
        ]
        result["ocr"][setting] = score_tags(gold, projected, types)
    return result


def run_f1(model_dir: Path, settings_from: str, data: Path) -> float | None:
    """The F1 the model's run recorded for it on the test split (metrics.json), to cross-check the gold column.

    Only for a run's PyTorch model directory trained on this data and scored on its test split (an
    exported variant's F1 is the manifest's, not checked here).
    """
    config = Path(settings_from)
    metrics = config.parent / "metrics.json"
    if config.name != "config.toml" or not metrics.is_file() or model_dir.resolve().parent != config.parent:
        return None
    import tomllib

    recorded = tomllib.loads(config.read_text(encoding="utf-8"))
    if recorded.get("holdout_forms") or Path(str(recorded.get("data", ""))).resolve() != data.resolve():
        return None
    record = json.loads(metrics.read_text(encoding="utf-8")).get("models", {}).get(model_dir.name, {})
    return record.get("f1")


def agreement(forms: list[ScannedForm]) -> WordAgreement:
    total = WordAgreement(0, 0, 0, 0, 0)
    for form in forms:
        page = PageInput(PageJob(form.image, 1, "image"))
        fill_from_ocr(page, form.ocr, form.size, True)
        total = total + word_agreement(form.words, page.words, match_words(form.word_boxes, page.word_boxes))
    return total


MEANING = {"$RUNS": "the directory holding the models' runs", "$OUT": "the report directory"}


def placeholders(args: argparse.Namespace) -> dict[str, str]:
    """Names for the absolute paths of the command (no reader has this machine's paths): the models'
    common parent directory, and the report directory."""
    absolute = [str(Path(m).expanduser().parent) for m in args.models if m.startswith(("/", "~"))]
    named = {"$RUNS": os.path.commonpath(absolute)} if absolute else {}
    if str(args.report_dir).startswith(("/", "~")):
        named["$OUT"] = str(Path(args.report_dir).expanduser())
    return named


def shown(model: str, results: dict[str, Any]) -> str:
    """A model path as the report prints it: with the command's placeholders."""
    return portable_command([model], results.get("placeholders", {}))


def render(results: dict[str, Any]) -> str:
    pages = results["forms"]
    lines = [
        "# OCR on FUNSD: entity F1 from Tesseract's words, against the gold words",
        "",
        f"Written by `{results['command']}`"
        + (
            f" ({note})."
            if (note := placeholder_note(results.get("placeholders", {}), MEANING, results["command"]))
            else "."
        ),
        f"Measured on {results['machine']}; Tesseract {results['tesseract']}, language {results['lang']}, "
        f"confidence floor {results['min_conf']:g}; {results['versions']}.",
        f"Data: the FUNSD test split at `{results['data']}`: {pages} forms, "
        f"{results['settings'][0]['agreement']['gold']} gold words.",
        "",
        "## What Tesseract read",
        "",
        "| OCR setting | gold words covered | of those, same text | OCR words | taken by no gold word | OCR s/page |",
        "|---|---|---|---|---|---|",
    ]
    for setting in results["settings"]:
        words = setting["agreement"]
        lines.append(
            f"| {setting['name']} | {words['matched'] / max(words['gold'], 1):.1%} | "
            f"{words['same_text'] / max(words['matched'], 1):.1%} | {words['ocr']} | {words['unmatched_ocr']} | "
            f"{setting['ocr_seconds'] / max(pages, 1):.2f} |"
        )
    lines += [
        "",
        "A gold word is covered when an OCR word covers at least half of the smaller of their two boxes; same "
        "text: equal but for case and edge punctuation. Words no gold word took: noise, pieces of a split word, "
        "text the annotation leaves out. *As is*: the image at its own size, as LayoutLMv3's processor OCRs it, "
        "at the resolution its file records, else `--image-dpi`, else Tesseract's guess (70 dpi); *enlarged*: "
        "resized (bicubic) before OCR, its resolution (times the factor) told to Tesseract.",
        "",
        "## Entity F1: gold words, and from OCR",
        "",
        "| model | served | boxes | OCR setting | F1 gold words | F1 from OCR | Δ points | P / R from OCR "
        "| pages/s with OCR | OCR share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in results["models"]:
        gold = m["gold_words"]
        for setting in results["settings"]:
            ocr = m["ocr"][setting["name"]]
            ocr_s, model_s = setting["ocr_seconds"], m["model_seconds"][setting["name"]]
            lines.append(
                f"| `{shown(m['model'], results)}` | {m['chosen']} | {m['boxes']} | {setting['name']} | {gold['f1'] * 100:.1f} | "
                f"{ocr['f1'] * 100:.1f} | {(ocr['f1'] - gold['f1']) * 100:+.1f} | "
                f"{ocr['precision'] * 100:.1f} / {ocr['recall'] * 100:.1f} | "
                f"{pages / (ocr_s + model_s):.2f} | {ocr_s / (ocr_s + model_s):.0%} |"
            )
    checked = [m for m in results["models"] if m.get("run_f1") is not None]
    differ = [m for m in checked if abs(m["run_f1"] - m["gold_words"]["f1"]) > 0.005]
    if differ:
        lines += [
            "",
            "**F1 on gold words differs from the run's own** (metrics.json): "
            + "; ".join(
                f"`{shown(m['model'], results)}` {m['gold_words']['f1'] * 100:.1f} here, {m['run_f1'] * 100:.1f} there"
                for m in differ
            )
            + " (other windows or boxes than its training, or another split).",
        ]
    elif checked:
        lines += [
            "",
            f"F1 on gold words matches each run's own test F1 (metrics.json) within 0.5 points "
            f"({len(checked)} of {len(results['models'])} models checked).",
        ]
    lines += [
        "",
        "## How it is scored",
        "",
        "Both F1 columns are entity F1 (seqeval, micro over the entity types) on the same gold words. *Gold "
        "words*: the annotation's words and boxes go in, as in training. *From OCR*: Tesseract's words go in "
        "instead, with the boxes the model was trained with (segments from Tesseract's block / paragraph / line "
        "numbers, or each word's own box); each gold word then takes the tag of the OCR word covering most of it, "
        "B-/I- redone along the gold words, and a gold word no OCR word covers counts as O. So OCR's misses, "
        "splits and merges cost the model what they cost a user. Pages/s: OCR and the model one after the other "
        "in one process (`python -m distill.predict` runs OCR in `--workers` processes beside the model); the "
        "machine may have been busy, so the times are indicative: `pytest bench --benchmark-only` times it "
        "properly (benchmark.md, *From the page image to entities*).",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill.studies.ocr",
        description="Entity F1 from Tesseract's words on FUNSD's test scans, against the gold words.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "models", metavar="MODEL", nargs="+", help="model directories, variants or run directories"
    )
    parser.add_argument("--data", default="../shared/data/funsd", help="FUNSD release directory")
    parser.add_argument("--report-dir", default="reports", help="where ocr.md and ocr.json go")
    parser.add_argument("--lang", default="eng", help="Tesseract language")
    parser.add_argument("--min-conf", type=float, default=0.0, help="drop OCR words below this confidence")
    parser.add_argument("--image-dpi", type=int, default=None, help="resolution of images that record none")
    parser.add_argument(
        "--ocr-scale",
        type=float,
        nargs="+",
        default=[1.0],
        help="enlarge images this much before OCR; several values: one OCR reading (and report row) each",
    )
    add_workers_option(parser)
    parser.add_argument("--forms", type=int, default=None, help="only the first N test forms (default: all)")
    return parser


def run(args: argparse.Namespace, command: str) -> Path:
    from distill.machine import machine_summary, package_versions

    tesseract = check_tesseract(args.lang)
    for model in args.models:  # every MODEL is one before the OCR's minutes are spent
        from distill.predict.loading import serving

        serving(model)
    if len(set(args.ocr_scale)) != len(args.ocr_scale) or min(args.ocr_scale) <= 0:
        raise DistillError(f"--ocr-scale takes distinct positive factors, got {args.ocr_scale}")
    readings: dict[str, list[ScannedForm]] = {}
    for scale in args.ocr_scale:
        options = OcrOptions(args.lang, args.min_conf, scale=scale, image_dpi=args.image_dpi)
        readings[setting_name(scale, args.image_dpi)] = read_forms(
            Path(args.data), options, args.workers, args.forms
        )
    whole = args.forms is None
    models = [
        score_model(model, readings, Path(args.data), whole)
        for model in tqdm(args.models, desc="models", disable=None)
    ]
    versions = package_versions(("pytesseract", "torch", "transformers", "onnxruntime"))
    forms = next(iter(readings.values()))
    results = {
        "command": command,
        "placeholders": placeholders(args),
        "machine": machine_summary(),
        "tesseract": tesseract,
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "lang": args.lang,
        "min_conf": args.min_conf,
        "data": args.data,
        "forms": len(forms),
        "settings": [
            {
                "name": name,
                "scale": scale,
                "image_dpi": args.image_dpi,
                "agreement": vars(agreement(scanned)),
                "ocr_seconds": sum(f.ocr_seconds for f in scanned),
            }
            for scale, (name, scanned) in zip(args.ocr_scale, readings.items(), strict=True)
        ],
        "models": models,
    }
    report_dir = Path(args.report_dir)
    atomic.write_json(report_dir / RESULTS, results)
    return atomic.write_text(report_dir / REPORT, render(results))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    quiet_library_noise()
    command = portable_command(["python", "-m", "distill.studies.ocr", *argv], placeholders(args))
    try:
        path = run(args, command)
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = json.loads((path.parent / RESULTS).read_text())
    for m in results["models"]:
        from_ocr = ", ".join(f"{score['f1']:.3f} from OCR {name}" for name, score in m["ocr"].items())
        print(f"{m['model']}: F1 {m['gold_words']['f1']:.3f} on gold words, {from_ocr}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
