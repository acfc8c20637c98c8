"""`python -m distill.studies.funsd`: the FUNSD study behind reports/funsd.md, over several seeds.

Per seed, training runs (each a normal `python -m distill.train` run directory):
  <out>/seed<N>/teacher      the teacher, unless it is the default ensemble of the two plain students
  <out>/seed<N>/text         the text-only student, plain fine-tuning
  <out>/seed<N>/text-kd      the text-only student, vanilla distillation (soft targets: --alpha, --temperature)
  <out>/seed<N>/text-<kd>    the text-only student, the --best-kd method (e.g. feature distillation and a
                             transfer set), named after its options
  <out>/seed<N>/layout       the layout-aware student (word boxes, no image), plain fine-tuning
  <out>/seed<N>/layout-<kd>  the layout-aware student, the best method (vanilla without --best-kd)
  <out>/seed<N>/teacher<L>, teacher<L>-kd, teacher<L>-l2l
                             with --init-layers L: the student built from L of the teacher's layers
                             (--student teacher:L), plain, vanilla KD, and layer-to-layer KD (--l2l-kd)
Options after `--` go to every run (e.g. `-- --synthetic-forms 16`). Runs go `--jobs` at a time (the
CPU's cores split between them); finished runs are reused, so the command resumes where it stopped
and may be run in parts. The report gives mean ± std over seeds, differences paired by seed, the
int8 export of the students where `python -m export.onnx` has been run on their run directories
(`--export` runs it), the command that wrote it, the machine and the summed wall time of its runs.
`--speed-only` times every row's model (PyTorch fp32 and its recommended CPU variant) interleaved in
one session on the test split (funsd_speed.py) and the report adds forms/s, speed-ups over the
teacher, the F1-vs-forms/s frontier (funsd-frontier.png) and the targets that need them.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill import atomic
from distill.commands import named_path, placeholder_note, portable_command
from distill.errors import DistillError
from distill.machine import machine_summary, package_versions
from distill.predict.loading import recommended_cpu_variant
from distill.run_dir import read_json
from distill.studies.cache import collect_from, share_into
from distill.studies.plot import Point, frontier_png
from distill.studies.speed import (
    PYTORCH,
    RECOMMENDED,
    SPEED_FILE,
    Target,
    time_all,
    variant_record,
)
from distill.tables import run_types

ENSEMBLE = "ensemble"  # --teacher value: the seed's plain text and layout students, logits averaged
LAYOUT_STUDENT = "layout-student"  # --teacher value: the layout-aware student's architecture, trained longer
GLIBC_MALLOC = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "1048576",
    "MALLOC_TRIM_THRESHOLD_": "1048576",
}
WALL = "wall_seconds.json"  # in each run directory: how long its `distill.train` took, start to end


@dataclass(frozen=True)
class Row:
    label: str
    kind: str  # the run directory's name under seed<N>/
    layout: bool = False
    kd: tuple[str, ...] | None = None  # the distilled row's distill.train options; None: not distilled
    student: str | None = None  # the row's own --student (teacher:N), else the study's --student

    @property
    def distilled(self) -> bool:
        return self.kd is not None

    @property
    def family(self) -> str:
        """Rows compared with one plain row: text, layout, or the teacher-initialised student."""
        return "init" if self.student else "layout" if self.layout else "text"

    @property
    def needs_teacher(self) -> bool:
        return self.distilled or self.student is not None


TEACHER_ROW = Row("teacher", "teacher")
TEXT = Row("student, text only", "text")
LAYOUT = Row("student, layout-aware", "layout", layout=True)


def kd_slug(options: Sequence[str]) -> str:
    """A run directory name for a distillation method: `--feature-weight 1 --transfer-copies 2` ->
    `kd-feature-weight1-transfer-copies2`."""
    parts = [
        ("-" if o.startswith("-") else "") + re.sub(r"[^A-Za-z0-9.]+", "-", o.lstrip("-")) for o in options
    ]
    return "kd" + "".join(parts)


def study_rows(args: argparse.Namespace) -> list[Row]:
    vanilla = ("--alpha", str(args.alpha), "--temperature", str(args.temperature))
    rows = [TEACHER_ROW, TEXT, Row("student, text only + vanilla KD", "text-kd", kd=vanilla)]
    best = tuple(shlex.split(args.best_kd))
    if best:
        rows.append(Row("student, text only + best KD", f"text-{kd_slug(best)}", kd=(*vanilla, *best)))
    rows.append(LAYOUT)
    if best:
        rows.append(
            Row("student, layout-aware + best KD", f"layout-{kd_slug(best)}", True, (*vanilla, *best))
        )
    else:
        rows.append(Row("student, layout-aware + vanilla KD", "layout-kd", True, vanilla))
    if args.init_layers:
        n = args.init_layers
        spec = f"teacher:{n}"
        label = f"student, {spec} ({n} of the teacher's layers)"
        layer_kd = tuple(shlex.split(args.l2l_kd))
        rows += [
            Row(label, f"teacher{n}", student=spec),
            Row(f"{label} + vanilla KD", f"teacher{n}-kd", kd=vanilla, student=spec),
            Row(f"{label} + layer-to-layer KD", f"teacher{n}-l2l", kd=(*vanilla, *layer_kd), student=spec),
        ]
    return rows


def plain_row(row: Row, rows: Sequence[Row]) -> Row:
    """The plain (not distilled) row of a row's family: what its gains are measured against."""
    return next(r for r in rows if r.family == row.family and not r.distilled and r is not TEACHER_ROW)


def best_text_kd(rows: Sequence[Row]) -> Row:
    """The text-only student's best method as the study defines it: --best-kd, else vanilla."""
    return [r for r in rows if r.distilled and r.family == "text"][-1]


def teacher_model_name(args: argparse.Namespace) -> str:
    """The teacher's directory inside its run: a layout-student teacher is that run's student."""
    return "student" if args.teacher == LAYOUT_STUDENT else "teacher"


def teacher_seed(args: argparse.Namespace, seed: int) -> int:
    """The seed whose run directory holds this seed's teacher: its own, or the one --teacher-seed shares."""
    return seed if args.teacher_seed is None else args.teacher_seed


def teacher_dirs(args: argparse.Namespace, seed: int, out: Path) -> list[Path]:
    if args.teacher == ENSEMBLE:
        runs = out / f"seed{seed}"
        return [runs / TEXT.kind / "student", runs / LAYOUT.kind / "student"]
    run, model = run_dir(out, seed, TEACHER_ROW, args)
    return [run / model]


def where(row: Row, args: argparse.Namespace) -> tuple[str, str]:
    """(run, model) holding a row's figures; an ensemble teacher is scored inside the distilled runs."""
    if row is TEACHER_ROW:
        return ("text-kd", "teacher") if args.teacher == ENSEMBLE else (row.kind, teacher_model_name(args))
    return row.kind, "student"


def train_args(args: argparse.Namespace, seed: int, row: Row, out: Path) -> list[str]:
    run = out / f"seed{seed}" / row.kind
    common = [
        "--data", args.data, "--seed", str(seed), "--output-dir", str(run), "--report-dir", str(run),
        "--max-length", str(args.max_length), "--stride", str(args.stride),
        "--batch-size", str(args.batch_size), "--student", row.student or args.student,
        "--holdout-forms", str(args.holdout_forms), "--box-lr", str(args.box_lr), "--box-init", args.box_init,
        "--bf16" if args.bf16 else "--no-bf16", *args.train_options,
    ]  # fmt: skip
    if row is TEACHER_ROW:
        if args.teacher == LAYOUT_STUDENT:
            return [*common, "--stage", "student", "--alpha", "0", "--student-layout",
                    "--student-lr", str(args.teacher_lr), "--epochs", str(args.teacher_epochs)]  # fmt: skip
        as_is = ["--teacher-as-is"] if args.teacher_as_is else []
        return [*common, "--stage", "teacher", "--teacher", args.teacher, *as_is,
                "--teacher-lr", str(args.teacher_lr), "--teacher-epochs", str(args.teacher_epochs),
                *shlex.split(args.teacher_options)]  # fmt: skip
    student = [
        *common,
        "--stage",
        "student",
        "--student-lr",
        str(args.student_lr),
        "--epochs",
        str(args.student_epochs),
    ]
    if row.layout:
        student.append("--student-layout")
    teacher = ",".join(str(path) for path in teacher_dirs(args, seed, out))
    if row.kd is None:
        # A teacher:N student is built from the teacher even when it is not distilled from it.
        return [*student, "--alpha", "0", *(["--teacher-dir", teacher] if row.student else [])]
    return [*student, "--teacher-dir", teacher, *row.kd, "--no-baseline"]


def run_dir(out: Path, seed: int, row: Row, args: argparse.Namespace) -> tuple[Path, str]:
    """(run directory, model) holding a row's figures for a seed; a shared teacher lives under its own seed."""
    kind, model = where(row, args)
    if row is TEACHER_ROW and args.teacher != ENSEMBLE:
        seed = teacher_seed(args, seed)
    return out / f"seed{seed}" / kind, model


def finished(out: Path, seed: int, row: Row, args: argparse.Namespace) -> bool:
    run, model = run_dir(out, seed, row, args)
    path = run / "metrics.json"
    return path.is_file() and model in read_json(path).get("models", {})


def train_one(args: argparse.Namespace, seed: int, row: Row, out: Path, threads: int) -> None:
    """One run in a subprocess with its share of the cores; its output goes to the run's train.log."""
    run = out / f"seed{seed}" / row.kind
    run.mkdir(parents=True, exist_ok=True)
    # glibc's per-thread arenas held ~10 GB RSS for one MPNet-base run (bf16, windows of 512) and the
    # kernel killed it; two arenas and early trimming kept it near 2.8 GB at the same speed.
    env = {**GLIBC_MALLOC, **os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "distill.train", *train_args(args, seed, row, out)]
    if row.distilled:
        share_into(run, out)  # the targets of a teacher another run already passed over these forms
    start = time.perf_counter()
    print(f"start  seed {seed} {row.kind}", flush=True)
    with open(run / "train.log", "a") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise DistillError(f"training failed (exit {code}); see its train.log", run)
    if row.distilled:
        collect_from(run, out)
    # Summed over the calls that ran it: a run resumed in parts counts every part.
    before = read_json(run / WALL).get("seconds", 0.0) if (run / WALL).is_file() else 0.0
    atomic.write_json(run / WALL, {"seconds": round(before + seconds, 1), "threads": threads})
    print(f"done   seed {seed} {row.kind} in {seconds:.0f} s", flush=True)


def run_all(args: argparse.Namespace, out: Path) -> None:
    """Every unfinished run, `args.jobs` at a time; distilled students start once their teacher is done."""
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    rows = study_rows(args)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        pending: list[Future] = []

        def submit(seed: int, row: Row, after: Sequence[Future] = ()) -> Future:
            def job() -> None:
                for teacher in after:
                    teacher.result()  # the teacher first; its failure fails this job too
                if not finished(out, seed, row, args):
                    train_one(args, seed, row, out, threads)

            future = pool.submit(job)
            pending.append(future)
            return future

        # A job only ever waits on one submitted before it, so no worker waits on a job that has not
        # started. An ensemble teacher is each seed's two plain students, so both come first; a trained
        # teacher comes first, then the text-only rows of every seed, then the layout-aware rows; within
        # each, one seed's rows before the next seed's: a study stopped part-way has the headline
        # (text-only) comparison, then the layout-aware one, paired over as many seeds as it finished.
        ready: dict[int, list[Future]] = {}
        if args.teacher == ENSEMBLE:
            for seed in args.seeds:
                ready[seed] = [submit(seed, TEXT), submit(seed, LAYOUT)]
            order = [[row for row in rows if row.distilled]]
        else:
            teachers = {
                s: submit(s, TEACHER_ROW) for s in sorted({teacher_seed(args, s) for s in args.seeds})
            }
            ready = {seed: [teachers[teacher_seed(args, seed)]] for seed in args.seeds}
            order = [[row for row in rows if row.family == family and row is not TEACHER_ROW]
                     for family in ("text", "layout", "init")]  # fmt: skip
        for group in order:
            for seed in args.seeds:
                for row in group:
                    submit(seed, row, ready[seed] if row.needs_teacher else ())
        for future in pending:
            future.result()


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt(values: Sequence[float], scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    m, s = mean_std([v * scale for v in values])
    mean = f"{m:+.{digits}f}" if signed else f"{m:.{digits}f}"
    # One value (a shared teacher, a row with one seed so far) has no spread to show.
    return mean if len(values) == 1 else f"{mean} ± {s:.{digits}f}"


def int8_record(run: Path, model: str) -> dict[str, Any] | None:
    """The int8 variant of `model` in the run's export manifest, if it was exported."""
    path = run / "onnx" / "manifest.json"
    if not path.is_file():
        return None
    variants = read_json(path).get("models", {}).get(model, {}).get("variants", {})
    return variants.get("int8")


def collect(out: Path, args: argparse.Namespace) -> dict[Row, list[dict[str, Any]]]:
    """Per row, one record per seed: the model's scores plus its run's int8 export, KD cost, wall time."""
    rows: dict[Row, list[dict[str, Any]]] = {row: [] for row in study_rows(args)}
    for seed in args.seeds:
        for row in rows:
            run, model = run_dir(out, seed, row, args)
            path = run / "metrics.json"
            metrics = read_json(path) if path.is_file() else {}
            if model not in metrics.get("models", {}):  # not finished
                if args.partial:
                    continue
                raise DistillError(
                    "missing: this run did not finish (--partial reports finished runs only)", path
                )
            record = dict(metrics["models"][model])
            record["seed"] = seed
            record["run"] = str(run.relative_to(out))  # under the study's output directory: portable
            record["int8"] = int8_record(run, model)
            recommended = recommended_cpu_variant(run, model)
            if recommended is not None:
                record["recommended"] = {
                    "variant": recommended[1],
                    **(variant_record(run, model, recommended[1]) or {}),
                }
            record["teacher_cache_seconds"] = metrics.get("teacher_cache_seconds", 0.0)
            record["teacher_targets"] = metrics.get("teacher_targets", "computed")
            record["test_forms"] = metrics.get("test_forms")
            record["wall_seconds"] = read_json(run / WALL)["seconds"] if (run / WALL).is_file() else None
            if row is TEACHER_ROW and (source := reused_teacher(run)) is not None:
                record["reused_from"] = source
                record["train_seconds"] = source["train_seconds"]  # the cost was paid in that run
            rows[row].append(record)
        if args.teacher == ENSEMBLE and rows[TEACHER_ROW] and rows[TEACHER_ROW][-1]["seed"] == seed:
            # an ensemble costs what its members cost
            members = [r for row in (TEXT, LAYOUT) for r in rows[row] if r["seed"] == seed]
            rows[TEACHER_ROW][-1]["train_seconds"] = sum(m.get("train_seconds", 0.0) for m in members)
    return rows


def reused_teacher(run: Path) -> dict[str, Any] | None:
    """Where a teacher run given `--teacher-dir` got its teacher: that run's data and budget.

    A study may score a teacher trained elsewhere (e.g. the tuning run on held-out forms); its
    report must say which forms that teacher saw and what its training cost, not this run's.
    """
    config_path = run / "config.toml"
    if not config_path.is_file():
        return None
    teacher_dir = tomllib.loads(config_path.read_text(encoding="utf-8")).get("teacher_dir", "")
    if not teacher_dir or "," in teacher_dir:
        return None
    source = Path(teacher_dir).parent
    if not (source / "metrics.json").is_file() or not (source / "config.toml").is_file():
        return None
    config = tomllib.loads((source / "config.toml").read_text(encoding="utf-8"))
    metrics = read_json(source / "metrics.json")
    teacher = metrics.get("models", {}).get("teacher", {})
    return {
        "run": source.name,
        "train_forms": metrics.get("train_forms"),
        "holdout_forms": config.get("holdout_forms", 0),
        "epochs": config.get("teacher_epochs") or config.get("epochs"),
        "lr": config.get("teacher_lr"),
        "loss": config.get("teacher_loss", "ce"),
        "seed": config.get("seed"),
        "train_seconds": teacher.get("train_seconds", 0.0),
    }


def reused_note(rows: dict[Row, list[dict[str, Any]]]) -> str:
    source = next((r["reused_from"] for r in rows.get(TEACHER_ROW, []) if r.get("reused_from")), None)
    if source is None:
        return ""
    held_out = f" ({source['holdout_forms']} held out for tuning)" if source["holdout_forms"] else ""
    return (
        f". This teacher was not trained by the study: it is reused (`--teacher-dir`) from the run "
        f"`{source['run']}`, which trained it on {source['train_forms']} training forms{held_out} for "
        f"{source['epochs']:g} epochs at lr {source['lr']:g} ({source['loss']} loss, seed {source['seed']}), "
        f"in {source['train_seconds']:.0f} s; the scored split took no part in its training or tuning"
    )


def teacher_description(args: argparse.Namespace) -> str:
    return {
        ENSEMBLE: "an ensemble of the seed's plain text-only and layout-aware students (word logits averaged)",
        LAYOUT_STUDENT: f"the layout-aware student's architecture trained for {args.teacher_epochs:g} epochs "
        f"at lr {args.teacher_lr:g}",
    }.get(
        args.teacher,
        f"`{as_shown(args.teacher, args)}` fine-tuned {'as it is (a token classifier on words)' if args.teacher_as_is else 'as a LayoutLMv3'} "
        f"for {args.teacher_epochs:g} epochs at lr {args.teacher_lr:g}",
    )


def overhead_cell(row: Row, records: list[dict[str, Any]], plain: list[dict[str, Any]]) -> str:
    """Teacher targets (and transfer set) computed for this run, as a share of the plain student's training."""
    if not row.distilled:
        return "—"
    plain_seconds = {p["seed"]: p["train_seconds"] for p in plain}
    # A run that read the targets another run computed (study_cache.py) paid nothing for them.
    computed = [r for r in records if r.get("teacher_targets") != "cache"]
    reused = len(records) - len(computed)
    read = "read the teacher's targets from the study's cache"
    note = f"; {reused} of {len(records)} runs {read}" if reused else ""
    if not computed:
        return f"none: {'the run' if reused == 1 else f'all {reused} runs'} {read}"
    shares = [
        r["teacher_cache_seconds"] / plain_seconds[r["seed"]] for r in computed if r["seed"] in plain_seconds
    ]
    if not shares:
        return "plain run not finished"
    seconds = statistics.fmean(r["teacher_cache_seconds"] for r in computed)
    return f"{seconds:.0f} s ({fmt(shares, 100.0, 0)} %){note}"


def render(
    rows: dict[Row, list[dict[str, Any]]],
    args: argparse.Namespace,
    command: str,
    speed: dict[str, Any] | None = None,
    frontier_name: str = "funsd-frontier.png",
) -> str:
    # The forms scored, as the runs' metrics.json counted them (whatever --data was).
    forms = next((r["test_forms"] for recs in rows.values() for r in recs if r.get("test_forms")), None)
    split = (
        f"{args.holdout_forms} held-out training forms (tuning; the test split is not used)"
        if args.holdout_forms
        else "the test split" + (f" ({forms} forms)" if forms else "")
    )
    versions = ", ".join(
        f"{k} {v}" for k, v in package_versions(("torch", "transformers", "datasets")).items()
    )
    # One entry per run directory: a shared teacher is one run, however many seeds it serves.
    walls = list(
        {
            r["run"]: r["wall_seconds"] for recs in rows.values() for r in recs if r.get("wall_seconds")
        }.values()
    )
    shared = args.teacher != ENSEMBLE and args.teacher_seed is not None
    lines = [
        "# FUNSD: teacher and students, mean ± std over seeds",
        "",
        f"Written by `{command}`"
        + (f" ({note})." if (note := placeholder_note(*command_placeholders(args), command)) else "."),
        "",
        f"Data `{args.data}`; scored on {split}; seeds {', '.join(map(str, args.seeds))}; "
        f"measured on {machine_summary()}; {versions}. "
        f"Wall time: {sum(walls) / 3600:.1f} h summed over the study's {len(walls)} runs "
        f"(their `distill.train` calls, resumed parts included), {args.jobs} at a time.",
        f"Students from `{as_shown(args.student, args)}` ({args.student_epochs:g} epochs, lr {args.student_lr:g}); "
        f"teacher: {teacher_description(args)}"
        f"{f' (one run, seed {args.teacher_seed}, shared by the students of every seed)' if shared else ''}"
        f"{reused_note(rows)}; "
        f"new box embeddings start {args.box_init}, lr {args.box_lr or args.student_lr:g}; windows of "
        f"{args.max_length} sub-tokens, stride {args.stride}, batch {args.batch_size}"
        f"{', bf16 mixed precision' if args.bf16 else ''}"
        f"{'; every run also given `' + shlex.join(args.train_options) + '`' if args.train_options else ''}.",
        "",
        "Methods (word-level, see the README): vanilla KD = soft targets, "
        f"T = {args.temperature:g}, alpha = {args.alpha:g}"
        + (
            f"; best KD = vanilla plus `{args.best_kd}`."
            if args.best_kd
            else " (no `--best-kd` was given: vanilla KD is the best method this study reports)."
        ),
        "",
        "| model | seeds | entity P | entity R | entity F1 | word acc. | params | train time | KD overhead (teacher targets; share of plain training) | int8 F1 | int8 ΔF1 vs PyTorch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    # The tables show a shared teacher once (one run: no spread); the paired differences keep it per seed.
    shown = {row: recs[:1] if row is TEACHER_ROW and shared else recs for row, recs in rows.items()}
    for row, records in shown.items():
        seeds = (
            f"{args.teacher_seed} (shared)"
            if row is TEACHER_ROW and shared
            else ", ".join(str(r["seed"]) for r in records)
        )
        if not records:
            lines.append(f"| {row.label} | none yet |" + " not run yet |" * 9)
            continue
        int8 = [r["int8"] for r in records if r.get("int8")]
        int8_cells = ["not exported"] * 2
        if int8:
            int8_cells = [
                fmt([v["f1"] for v in int8]),
                fmt([v["delta_f1_points"] for v in int8], 1.0, 2, signed=True),
            ]
        plain = rows[plain_row(row, list(rows))]
        lines.append(
            f"| {row.label} | {seeds} | {fmt([r['precision'] for r in records])} | {fmt([r['recall'] for r in records])} | "
            f"**{fmt([r['f1'] for r in records])}** | {fmt([r['word_accuracy'] for r in records])} | "
            f"{records[0]['params'] / 1e6:.1f} M | {fmt([r.get('train_seconds', 0.0) for r in records], 1.0, 0)} s | "
            f"{overhead_cell(row, records, plain)} | " + " | ".join(int8_cells) + " |"
        )
    # The runs' own labels (their per-type scores), not a list fixed here.
    types = run_types({f"{row.label}/{i}": r for row, recs in rows.items() for i, r in enumerate(recs)})
    lines += [
        "",
        "int8 columns: `python -m export.onnx --models student` on each run; ΔF1 is against that export's "
        "own PyTorch score. KD overhead: the teacher's pass over the student's training forms (and the "
        "transfer set, if any), averaged over the runs that computed it: a run that found the same "
        "teacher's targets for the same forms in the study's cache (`<output-dir>/teacher-cache`) read "
        "them instead; the teacher's own fine-tuning is its row's train time, paid once "
        + ("for the whole study." if shared else "per seed."),
        "",
        "Entity F1 per type:",
        "",
        "| model | " + " | ".join(types) + " |",
        "|---|" + "---:|" * len(types),
    ]
    for row, records in shown.items():
        if not records:
            continue
        cells = [fmt([r["per_type"][t]["f1"] for r in records if t in r["per_type"]]) for t in types]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")

    def diffs(a: Row, b: Row, seeds: set[int] | None = None) -> list[float]:
        """F1 differences over the seeds both rows have finished (and in `seeds`), paired by seed."""
        other = {r["seed"]: r["f1"] for r in rows[b] if seeds is None or r["seed"] in seeds}
        return [(x["f1"] - other[x["seed"]]) * 100.0 for x in rows[a] if x["seed"] in other]

    def mean_diff(a: Row, b: Row, seeds: set[int] | None = None) -> float:
        found = diffs(a, b, seeds)
        return statistics.fmean(found) if found else float("nan")

    def paired(a: Row, b: Row) -> str:
        found = diffs(a, b)
        if not found:
            return "not measured yet"
        n = len(found)
        # Two decimals and a sign, as the verdicts print them: 7.99 must not read as a met 8.0.
        return fmt(found, 1.0, 2, signed=True) + (
            "" if n == len(args.seeds) else f" (over {n} of {len(args.seeds)} seeds)"
        )

    best = best_text_kd(list(rows))
    kd_rows = [r for r in rows if r.distilled]
    gap = mean_diff(TEACHER_ROW, TEXT)
    # The share recovered, over the seeds the best method has finished (the gap on those same seeds).
    gap_there = mean_diff(TEACHER_ROW, TEXT, {r["seed"] for r in rows[best]})
    recovered = mean_diff(best, TEXT) / gap_there if gap_there > 0 else float("nan")
    top = best_student(rows)
    best_int8 = [r["int8"]["delta_f1_points"] for r in rows[top] if r.get("int8")]
    lines += [
        "",
        "Differences in entity F1 points, paired by seed (mean ± std):",
        "",
        f"- teacher over the plain text-only student: {paired(TEACHER_ROW, TEXT)}",
        f"- layout-aware over text-only student: {paired(LAYOUT, TEXT)}",
        *[f"- {row.label} over plain: {paired(row, plain_row(row, list(rows)))}" for row in kd_rows],
        f"- share of the teacher–student gap the best text-only method ({best.label}) recovers: "
        f"{100 * recovered:.0f} %",
        "",
        "Against the targets (means over seeds):",
        "",
        verdict(
            f"the teacher beats the plain text-only student by ≥ 8 F1 points ({gap:+.2f})",
            known(gap, gap >= 8.0),
        ),
        verdict(
            f"the best method ({best.label}) raises the text-only student by ≥ 2.0 F1 points "
            f"({mean_diff(best, TEXT):+.2f})",
            known(mean_diff(best, TEXT), mean_diff(best, TEXT) >= 2.0),
        ),
        verdict(
            f"it recovers ≥ 25 % of the teacher–student gap ({100 * recovered:.0f} %)",
            known(recovered, recovered >= 0.25),
        ),
        verdict(
            f"int8 of the best student ({top.label}) loses ≤ 1.0 F1 point",
            bool(best_int8) and statistics.fmean(best_int8) >= -1.0,
            f" ({statistics.fmean(best_int8):+.2f}, {len(best_int8)} of {len(rows[top])} seeds exported)"
            if best_int8
            else " (not exported yet)",
        ),
    ]
    lines += cost_section(rows, args, speed, frontier_name)
    return "\n".join(lines) + "\n"


RUNTIMES = ((PYTORCH, "PyTorch fp32"), (RECOMMENDED, "recommended CPU variant"))
SMALL_PARAMS = 25e6  # the "smallest student" class of the targets (MiniLM-L6: 22.7 M)


def f1_points(records: list[dict[str, Any]]) -> list[float]:
    return [r["f1"] * 100.0 for r in records]


def speed_of(speed: dict[str, Any] | None, row: Row, runtime: str) -> float | None:
    entry = ((speed or {}).get("rows", {}).get(row.kind) or {}).get(runtime)
    return entry["forms_per_s"] if entry else None


def speedup(speed: dict[str, Any] | None, row: Row, runtime: str) -> float | None:
    ours, teacher = speed_of(speed, row, runtime), speed_of(speed, TEACHER_ROW, runtime)
    return ours / teacher if ours and teacher else None


def frontier_points(rows: dict[Row, list[dict[str, Any]]], speed: dict[str, Any] | None) -> list[Point]:
    points = []
    for row, records in rows.items():
        for runtime, name in RUNTIMES:
            forms = speed_of(speed, row, runtime)
            if records and forms:
                m, sd = mean_std(f1_points(records))
                points.append(Point(row.kind, name, forms, m, sd))  # run names: short labels
    return points


def cost_section(
    rows: dict[Row, list[dict[str, Any]]],
    args: argparse.Namespace,
    speed: dict[str, Any] | None,
    frontier_name: str,
) -> list[str]:
    """forms/s beside F1, the speed-ups over the teacher, the frontier plot and the targets that need them."""
    lines = ["", "## Cost: forms/s on the scored split, and the targets of the teacher-initialised study", ""]
    if speed:
        lines += [
            f"Timed by `{speed['command']}` (no training running) on {speed['machine']}: "
            f"{speed['rounds']} interleaved rounds over the {speed['forms']} forms, {speed['batch_size']} "
            f"windows a batch, {speed['threads']} threads; median per model. One seed's models "
            f"(seed {speed['seed']}): speed does not depend on the seed. forms/s is end to end (windows, "
            "tokens, image where read, forward passes); × teacher is the speed-up over the teacher in the "
            "same runtime (the teacher's own recommended variant for that column).",
            "",
        ]
    else:
        lines += ["Not timed yet: run the study command again with `--speed-only` (no training running).", ""]
    lines += [
        "| model | params | entity F1 | PyTorch fp32 forms/s | × teacher | recommended CPU variant | forms/s | × teacher | its F1 | ΔF1 vs PyTorch |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row, records in rows.items():
        if not records:
            lines.append(f"| {row.label} | not run yet |" + " |" * 8)
            continue
        cells = []
        for runtime, _ in RUNTIMES:
            forms, up = speed_of(speed, row, runtime), speedup(speed, row, runtime)
            cells.append(f"{forms:.2f}" if forms else "not timed")
            cells.append(f"{up:.2f}×" if up else "—")
        recommended = [r["recommended"] for r in records if r.get("recommended")]
        variant = recommended[0]["variant"] if recommended else "not exported"
        scored = [v for v in recommended if v.get("f1") is not None]
        rec_f1 = fmt([v["f1"] for v in scored]) if scored else "—"
        rec_delta = fmt([v["delta_f1_points"] for v in scored], 1.0, 2, signed=True) if scored else "—"
        lines.append(
            f"| {row.label} | {records[0]['params'] / 1e6:.1f} M | {fmt([r['f1'] for r in records])} | "
            f"{cells[0]} | {cells[1]} | {variant} | {cells[2]} | {cells[3]} | {rec_f1} | {rec_delta} |"
        )
    if speed and frontier_points(rows, speed):
        names = ", ".join(f"{row.kind} = {row.label}" for row in rows)
        lines += [
            "",
            f"![entity F1 against forms/s, both runtimes]({frontier_name})",
            "",
            f"Points: {names}.",
        ]
    lines += ["", "Against the targets of the teacher-initialised study (means over seeds):", ""]
    lines += issue_targets(rows, speed)
    return lines


def issue_targets(rows: dict[Row, list[dict[str, Any]]], speed: dict[str, Any] | None) -> list[str]:
    teacher = rows[TEACHER_ROW]
    t_f1 = statistics.fmean(f1_points(teacher)) if teacher else float("nan")
    header = [r["per_type"]["HEADER"]["f1"] * 100 for r in teacher if "HEADER" in r.get("per_type", {})]
    t_header = statistics.fmean(header) if header else float("nan")
    out = [
        verdict(
            f"the teacher reaches ≥ 63.0 F1 ({t_f1:.2f}) with HEADER F1 ≥ 30 ({t_header:.2f})",
            known(t_f1 + t_header, t_f1 >= 63.0 and t_header >= 30.0),
        )
    ]
    students = {row: recs for row, recs in rows.items() if row is not TEACHER_ROW and recs}

    def within(row: Row, points: float, times: float, what: str) -> list[str]:
        gap = t_f1 - statistics.fmean(f1_points(students[row]))
        lines = []
        for runtime, name in RUNTIMES:
            up = speedup(speed, row, runtime)
            lines.append(
                verdict(
                    f"{what} ({row.label}) is within {points:.1f} F1 of the teacher "
                    f"({abs(gap):.2f} {'below' if gap >= 0 else 'above'}) at "
                    f"≥ {times:g}× its forms/s in {name} " + (f"({up:.2f}×)" if up else "(not timed yet)"),
                    known(gap if up else float("nan"), gap <= points and up is not None and up >= times),
                )
            )
        return lines

    if students:
        out += within(best_student(students), 2.0, 2.0, "the best student")
        small = {row: recs for row, recs in students.items() if recs[0]["params"] <= SMALL_PARAMS}
        if small:
            best_small = max(small, key=lambda row: statistics.fmean(f1_points(small[row])))
            out += within(
                best_small, 4.0, 6.0, f"the best student of ≤ {SMALL_PARAMS / 1e6:.0f} M parameters"
            )
        else:
            out.append(verdict(f"a student of ≤ {SMALL_PARAMS / 1e6:.0f} M parameters exists", False))
    distilled = {row: recs for row, recs in rows.items() if row.distilled}  # finished or not
    losses = {
        row: [
            r["recommended"]["delta_f1_points"]
            for r in recs
            if (r.get("recommended") or {}).get("f1") is not None
        ]
        for row, recs in distilled.items()
    }
    measured = {row: statistics.fmean(v) for row, v in losses.items() if v}
    worst = min(measured.items(), key=lambda kv: kv[1], default=None)
    out.append(
        verdict(
            "the recommended CPU variant of every distilled student loses ≤ 1.0 F1 point"
            + (f" (worst: {worst[0].label}, {worst[1]:+.2f})" if worst else ""),
            # One loss beyond the budget decides; otherwise every distilled row must have been measured.
            False
            if any(v < -1.0 for v in measured.values())
            else None
            if len(measured) < len(distilled) or not distilled
            else True,
            ""
            if len(measured) == len(distilled)
            else f" ({len(measured)} of {len(distilled)} rows exported)",
        )
    )
    return out


def best_student(rows: dict[Row, list[dict[str, Any]]]) -> Row:
    """The student row with the best mean F1 over the seeds every finished student row shares.

    A row with one seed so far is not ranked against another's three: a partial study would pick on
    luck. Without a shared seed each row's own mean decides; with nothing finished, the text row.
    """
    students = [row for row in rows if row is not TEACHER_ROW and rows[row]]
    common = set.intersection(*({r["seed"] for r in rows[row]} for row in students)) if students else set()
    return max(
        students,
        key=lambda row: statistics.fmean(r["f1"] for r in rows[row] if r["seed"] in common or not common),
        default=TEXT,
    )


def known(value: float, held: bool) -> bool | None:
    """A verdict's outcome, or None while the figure behind it is not measured (NaN)."""
    return None if math.isnan(value) else held


def verdict(claim: str, held: bool | None, note: str = "") -> str:
    outcome = "not measured yet" if held is None else "met" if held else "**not met**"
    return f"- {outcome}: {claim}{note}"


# distill.train options that tell one tuning run from another, as config.toml spells them.
TUNED = ("student", "student_layout", "epochs", "student_lr", "alpha", "temperature", "feature_weight",
         "feature_loss", "hidden_weight", "attention_weight", "transfer_copies")  # fmt: skip


def tuning_table(out: Path, seeds: Sequence[int]) -> str:
    """Every student run found under the seeds, with the options that define it: the tuning record."""
    found: dict[str, dict[int, tuple[dict[str, Any], float]]] = {}
    for seed in seeds:
        for path in sorted((out / f"seed{seed}").glob("*/metrics.json")):
            record = read_json(path)["models"].get("student")
            if record is None:
                continue
            config = tomllib.loads((path.parent / "config.toml").read_text())
            found.setdefault(path.parent.name, {})[seed] = (config, record["f1"] * 100.0)
    lines = [
        "| run | " + " | ".join(TUNED) + " | entity F1 per seed | mean |",
        "|---|" + "---|" * len(TUNED) + "---|---:|",
    ]
    for kind, per_seed in sorted(
        found.items(), key=lambda kv: -statistics.fmean(f for _, f in kv[1].values())
    ):
        config = next(iter(per_seed.values()))[0]
        scores = [f for _, f in per_seed.values()]
        lines.append(
            f"| {kind} | "
            + " | ".join(str(config.get(k, "")) for k in TUNED)
            + " | "
            + ", ".join(f"{f:.1f}" for f in scores)
            + f" | **{statistics.fmean(scores):.1f}** |"
        )
    return "\n".join(lines) + "\n"


def speed_targets(args: argparse.Namespace, out: Path, seed: int) -> list[Target]:
    """Every row's model of one seed, in PyTorch and (where exported) its recommended CPU variant."""
    targets = []
    for row in study_rows(args):
        if row is TEACHER_ROW and args.teacher == ENSEMBLE:
            continue  # two models, not one to time: its members are the plain rows
        run, model = run_dir(out, seed, row, args)
        if not (run / model / "config.json").is_file():
            continue
        targets.append(Target(row.kind, PYTORCH, run / model, "PyTorch fp32"))
        recommended = recommended_cpu_variant(run, model)
        if recommended is not None:
            targets.append(Target(row.kind, RECOMMENDED, *recommended))
    return targets


def measure_speed(args: argparse.Namespace, out: Path, command: str) -> dict[str, Any]:
    """Time every row (funsd_speed.time_all) and keep the figures in <out>/speed.json."""
    import torch

    from distill.data.run_data import load_run_data
    from distill.run_dir import read_config

    seed = args.seeds[0]
    targets = speed_targets(args, out, seed)
    if not targets:
        raise DistillError("no finished run to time: train the study first", out / f"seed{seed}")
    config = read_config(targets[0].path.parent)  # a row's run: the first target is its PyTorch model
    columns = ("tokens", "bboxes", "image")
    forms = [{k: row[k] for k in columns} for row in load_run_data(config)["test"]]
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    figures = time_all(targets, forms, args.max_length, args.stride, args.batch_size, args.speed_rounds)
    speed = {
        "command": command,
        "machine": machine_summary(),
        "rounds": args.speed_rounds,
        "forms": len(forms),
        "batch_size": args.batch_size,
        "threads": threads,
        "seed": seed,
        "rows": figures,
    }
    atomic.write_json(out / SPEED_FILE, speed)
    return speed


def list_runs(args: argparse.Namespace, out: Path) -> list[str]:
    """`RUN MODEL` per finished run of the study: what `python -m export.onnx --models` exports."""
    lines = []
    for seed in args.seeds:
        for row in study_rows(args):
            if row is TEACHER_ROW and args.teacher == ENSEMBLE:
                continue
            if finished(out, seed, row, args):
                run, model = run_dir(out, seed, row, args)
                line = f"{run} {model}"
                if line not in lines:  # a shared teacher once
                    lines.append(line)
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m distill.studies.funsd", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data/funsd", help="FUNSD release directory")
    p.add_argument("--student", required=True, help="student checkpoint: hub id or local directory")
    p.add_argument(
        "--teacher",
        default=ENSEMBLE,
        help=f"'{ENSEMBLE}' (each seed's plain text-only and layout-aware students, averaged), "
        f"'{LAYOUT_STUDENT}' (the layout-aware student trained for --teacher-epochs), or a "
        "LayoutLMv3 hub id / directory, or a text encoder (see --teacher-as-is)",
    )
    p.add_argument(
        "--teacher-as-is",
        action="store_true",
        help="fine-tune a text encoder given as --teacher as itself, not as a LayoutLMv3 built around it",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--teacher-seed",
        type=int,
        default=None,
        help="train one teacher, at this seed, and distil every seed's students from it "
        "(default: one teacher per seed); the report says so",
    )
    p.add_argument("--teacher-epochs", type=float, default=16.0)
    p.add_argument("--teacher-lr", type=float, default=2e-4)
    p.add_argument("--student-epochs", type=float, default=10.0)
    p.add_argument("--student-lr", type=float, default=2e-4)
    p.add_argument(
        "--box-lr", type=float, default=0.0, help="learning rate of new box embeddings (0: --student-lr)"
    )
    p.add_argument("--box-init", default="zero", help="new box embeddings start: zero, sinusoid or random")
    p.add_argument("--alpha", type=float, default=0.5, help="vanilla KD: weight of the soft targets")
    p.add_argument("--temperature", type=float, default=2.0, help="vanilla KD: temperature")
    p.add_argument(
        "--best-kd",
        default="",
        metavar="OPTIONS",
        help="distill.train options of the best method, added to vanilla KD's, e.g. "
        "'--feature-weight 1 --transfer-copies 2'; its rows are named after them (empty: vanilla only)",
    )
    p.add_argument(
        "--teacher-options",
        default="",
        metavar="OPTIONS",
        help="distill.train options for the teacher's run only, e.g. '--teacher-loss balanced "
        "--no-teacher-image --box-lr 1e-3'",
    )
    p.add_argument(
        "--init-layers",
        type=int,
        default=0,
        help="add the rows of a student built from this many of the teacher's layers (--student "
        "teacher:N): plain, vanilla KD and layer-to-layer KD (0: none)",
    )
    p.add_argument(
        "--l2l-kd",
        default="--hidden-weight 1",
        metavar="OPTIONS",
        help="the layer-to-layer row's distill.train options, added to vanilla KD's",
    )
    p.add_argument(
        "--speed-only",
        action="store_true",
        help="train nothing: time every row's model (PyTorch fp32 and its recommended CPU variant) "
        "interleaved, keep <output-dir>/speed.json, and write the report",
    )
    p.add_argument("--speed-rounds", type=int, default=3, help="interleaved timing rounds of --speed-only")
    p.add_argument(
        "--list-runs",
        action="store_true",
        help="print 'RUN MODEL' for every finished run (for a `python -m export.onnx` loop) and exit",
    )
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=False, help="bf16 mixed precision"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (cores are split between them)")
    p.add_argument(
        "--holdout-forms",
        type=int,
        default=0,
        help="tune on this many held-out training forms instead of the test split",
    )
    p.add_argument("--output-dir", default="runs/funsd")
    p.add_argument("--report-dir", default="reports")
    p.add_argument("--report-only", action="store_true", help="write the report from finished runs")
    p.add_argument(
        "--partial",
        action="store_true",
        help="report the runs finished so far (a study run in parts); rows say which seeds they cover",
    )
    return p


def as_shown(value: object, args: argparse.Namespace) -> str:
    """A path as the report prints it: an absolute model directory by its placeholder ($T, $M), as
    in the command (no reader has this machine's paths); anything else as given."""
    paths, _ = command_placeholders(args)
    return next((name for name, path in paths.items() if path is not None and path == str(value)), str(value))


def shown_paths(value: Any, args: argparse.Namespace) -> Any:
    """`value` (the report's JSON) with every string that is, or lies under, an absolute model or
    output directory of the command written as its placeholder, as the markdown writes it."""
    named = {name: path for name, path in command_placeholders(args)[0].items() if path is not None}

    def shown(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: shown(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [shown(inner) for inner in item]
        if isinstance(item, str) and item.startswith(("/", "~")):
            hit = named_path(Path(item).expanduser(), named)
            if hit is not None:
                return hit[0] if hit[1] == "." else f"{hit[0]}/{hit[1]}"
        return item

    return shown(value)


def command_placeholders(args: argparse.Namespace) -> tuple[dict[str, str | None], dict[str, str]]:
    """Placeholders for the absolute model and output directories in the command (distill/commands.py)."""

    def absolute(value: object) -> str | None:
        return str(value) if str(value).startswith(("/", "~")) else None

    paths = {"$T": absolute(args.teacher), "$M": absolute(args.student), "$OUT": absolute(args.output_dir)}
    meaning = {"$T": "the teacher's model directory", "$M": "the students' model directory"}
    meaning["$OUT"] = "the study's output directory"
    return paths, meaning


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    args.train_options = argv[split + 1 :]  # after `--`: passed to every distill.train run
    out = Path(args.output_dir)
    command = portable_command(
        ["python", "-m", "distill.studies.funsd", *argv], command_placeholders(args)[0]
    )
    try:
        if args.init_layers and args.teacher == ENSEMBLE:
            raise DistillError("--init-layers builds students from one trained teacher, not the ensemble")
        if args.list_runs:
            print("\n".join(list_runs(args, out)))
            return 0
        if not (args.report_only or args.speed_only):
            run_all(args, out)
        name = "funsd-holdout.md" if args.holdout_forms else "funsd.md"
        frontier_name = name.replace(".md", "-frontier.png")
        speed = measure_speed(args, out, command) if args.speed_only else None
        if speed is None and (out / SPEED_FILE).is_file():
            speed = read_json(out / SPEED_FILE)
        rows = collect(out, args)
        report = render(rows, args, command, speed, frontier_name)
        if args.holdout_forms:  # tuning: the study's report plus every run tried so far
            report += "\n## Every student run under " + f"`{out}`\n\n" + tuning_table(out, args.seeds)
        points = frontier_points(rows, speed)
        if points:
            title = f"FUNSD ({'held-out forms' if args.holdout_forms else 'test split'}), {speed['machine']}"
            atomic.write_bytes(Path(args.report_dir) / frontier_name, frontier_png(points, title))
        path = atomic.write_text(Path(args.report_dir) / name, report)
        atomic.write_json(Path(args.report_dir) / name.replace(".md", ".json"), shown_paths({
            "command": command, "rows": {row.kind: records for row, records in rows.items()}, "speed": speed,
        }, args))  # fmt: skip
    except DistillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
