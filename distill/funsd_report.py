"""`python -m distill.funsd_report`: the FUNSD study behind reports/funsd.md, over several seeds.

Per seed, two training runs share one teacher:
  <out>/seed<N>/text    teacher, then the text-only student with and without distillation
  <out>/seed<N>/layout  the layout-aware student (word boxes, no image) with and without distillation,
                        distilled from the same seed's teacher
The report gives mean ± std over seeds of every figure; runs already finished are reused, so the
command resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill import atomic
from distill.errors import DistillError
from distill.machine import machine_summary
from distill.schema import ENTITY_TYPES

# (row label, run kind, model name in that run's metrics.json)
ROWS = [
    ("teacher (LayoutLMv3: text + layout + image)", "text", "teacher"),
    ("student, text only", "text", "student-baseline"),
    ("student, text only + distillation", "text", "student"),
    ("student, layout-aware", "layout", "student-baseline"),
    ("student, layout-aware + distillation", "layout", "student"),
]


def train_args(args: argparse.Namespace, seed: int, run: Path, layout: bool) -> list[str]:
    common = [
        "--data", args.data, "--seed", str(seed), "--output-dir", str(run), "--report-dir", str(run),
        "--max-length", str(args.max_length), "--stride", str(args.stride), "--batch-size", str(args.batch_size),
        "--student", args.student, "--student-lr", str(args.student_lr), "--epochs", str(args.student_epochs),
        "--holdout-forms", str(args.holdout_forms),
    ]  # fmt: skip
    if layout:
        return [
            *common,
            "--stage",
            "student",
            "--teacher-dir",
            str(run.parent / "text" / "teacher"),
            "--student-layout",
        ]
    return [
        *common, "--teacher", args.teacher, "--teacher-lr", str(args.teacher_lr),
        "--teacher-epochs", str(args.teacher_epochs),
    ]  # fmt: skip


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    m, s = mean_std([v * scale for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def collect(out: Path, seeds: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in ROWS}
    for seed in seeds:
        for label, kind, name in ROWS:
            path = out / f"seed{seed}" / kind / "metrics.json"
            if not path.is_file():
                raise DistillError("missing: the run for this seed did not finish", path)
            rows[label].append(json.loads(path.read_text())["models"][name])
    return rows


def render(rows: dict[str, list[dict[str, Any]]], args: argparse.Namespace, latency: dict[str, str]) -> str:
    seeds = ", ".join(map(str, args.seeds))
    split = (
        f"{args.holdout_forms} held-out training forms (tuning)"
        if args.holdout_forms
        else "the FUNSD test split (50 forms)"
    )
    lines = [
        "# FUNSD: teacher and students, mean ± std over seeds",
        "",
        f"Data `{args.data}`; scored on {split}; seeds {seeds}; measured on {machine_summary()}.",
        f"Teacher `{args.teacher}` ({args.teacher_epochs} epochs, lr {args.teacher_lr}); students from `{args.student}` "
        f"({args.student_epochs} epochs, lr {args.student_lr}); windows of {args.max_length} sub-tokens, stride {args.stride}, "
        f"batch {args.batch_size}. Distillation: word-level, T = 2, alpha = 0.5.",
        "",
        "| model | entity P | entity R | entity F1 | word acc. | params | train time | int8 latency |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, records in rows.items():
        lines.append(
            f"| {label} | {fmt([r['precision'] for r in records])} | {fmt([r['recall'] for r in records])} | "
            f"**{fmt([r['f1'] for r in records])}** | {fmt([r['word_accuracy'] for r in records])} | "
            f"{records[0]['params'] / 1e6:.1f} M | {fmt([r.get('train_seconds', 0.0) for r in records], 1.0, 0)} s | "
            f"{latency.get(label, 'n/a')} |"
        )
    lines += [
        "",
        "Entity F1 per type:",
        "",
        "| model | " + " | ".join(ENTITY_TYPES) + " |",
        "|---|" + "---:|" * 3,
    ]
    for label, records in rows.items():
        cells = [fmt([r["per_type"][t]["f1"] for r in records]) for t in ENTITY_TYPES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    f1 = {label: [r["f1"] for r in records] for label, records in rows.items()}
    layout_gain = [a - b for a, b in zip(f1[ROWS[3][0]], f1[ROWS[1][0]], strict=True)]
    kd_text = [a - b for a, b in zip(f1[ROWS[2][0]], f1[ROWS[1][0]], strict=True)]
    kd_layout = [a - b for a, b in zip(f1[ROWS[4][0]], f1[ROWS[3][0]], strict=True)]
    lines += [
        "",
        "Differences in F1 points, paired by seed (mean ± std):",
        "",
        f"- layout-aware over text-only student: {fmt(layout_gain)}",
        f"- distillation, text-only student: {fmt(kd_text)}",
        f"- distillation, layout-aware student: {fmt(kd_layout)}",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m distill.funsd_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/funsd", help="FUNSD release directory")
    p.add_argument(
        "--teacher",
        required=True,
        help="teacher: a LayoutLMv3 directory/hub id, or a text encoder to start one from",
    )
    p.add_argument("--student", required=True, help="student checkpoint (hub id or directory)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--teacher-epochs", type=float, default=30.0)
    p.add_argument("--teacher-lr", type=float, default=1e-4)
    p.add_argument("--student-epochs", type=float, default=20.0)
    p.add_argument("--student-lr", type=float, default=2e-4)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--holdout-forms",
        type=int,
        default=0,
        help="tune on this many held-out training forms instead of the test split",
    )
    p.add_argument("--output-dir", default="runs/funsd")
    p.add_argument("--report-dir", default="reports")
    p.add_argument("--latency-json", help="bench JSON to take int8 latencies from (optional)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from distill.train import main as train_main

    args = build_parser().parse_args(argv)
    out = Path(args.output_dir)
    try:
        for seed in args.seeds:
            for kind in ("text", "layout"):
                run = out / f"seed{seed}" / kind
                if (run / "metrics.json").is_file() and (run / "student-baseline").is_dir():
                    continue
                print(f"== seed {seed}: {kind} ==", flush=True)
                if train_main(train_args(args, seed, run, layout=kind == "layout")) != 0:
                    return 2
        latency = json.loads(Path(args.latency_json).read_text()) if args.latency_json else {}
        name = "funsd.md" if not args.holdout_forms else "funsd-tuning.md"
        path = atomic.write_text(
            Path(args.report_dir) / name, render(collect(out, args.seeds), args, latency)
        )
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
