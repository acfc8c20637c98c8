"""The FUNSD study's plan and queue: its rows, each row's `distill.train` options, runs `--jobs` at a time."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from distill import atomic
from distill.errors import DistillError
from distill.run_dir import read_json
from distill.studies.cache import collect_from, share_into

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
