"""The run directory: the contract between training, export and the bench (see DESIGN.md)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from distill import atomic
from distill.config import TrainConfig
from distill.errors import DistillError

RUNS = Path("runs")
LATEST = "latest"
CONFIG = "config.toml"
METRICS = "metrics.json"
TEACHER = "teacher"
STUDENT = "student"
BASELINE = "student-baseline"  # the same student trained without distillation
TOKENIZERS = "tokenizers"  # the tiny preset's trained tokenizers, shared by ranks, resumes and students


def new_run_dir(output_dir: str | Path | None) -> Path:
    """The directory a run writes: the one given, else runs/<timestamp>."""
    if output_dir:
        return Path(output_dir)
    started = time.time()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank of a torchrun / accelerate launch must pick the same name: use the launcher's start.
        import psutil

        started = psutil.Process(os.getppid()).create_time()
    return RUNS / time.strftime("%Y%m%d-%H%M%S", time.localtime(started))


def mark_latest(run: Path) -> None:
    """Point runs/latest at this run (a relative link when it lives under runs/)."""
    RUNS.mkdir(exist_ok=True)
    run = run.resolve()
    target = str(run.relative_to(RUNS.resolve())) if run.parent == RUNS.resolve() else str(run)
    atomic.point_symlink(RUNS / LATEST, target)


def resolve_run_dir(run_dir: str | Path | None = None) -> Path:
    """The run to read: the one given, else runs/latest; a clear error when there is none."""
    path = Path(run_dir) if run_dir else RUNS / LATEST
    if not path.exists():
        hint = "" if run_dir else " (runs/latest is made by a training run)"
        raise DistillError(
            f"no run directory here{hint}: run `python -m distill.train` first, or pass --run-dir", path
        )
    if not (path / CONFIG).is_file():
        raise DistillError(f"not a run directory (no {CONFIG}): run `python -m distill.train` first", path)
    return path.resolve()


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DistillError(f"not valid JSON: {err}", path) from err


def read_config(run: Path) -> TrainConfig:
    return TrainConfig.read(run / CONFIG)


def dir_size(path: Path) -> int:
    """Bytes on disk of everything under `path` (a model directory's size)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def model_dirs(run: Path) -> dict[str, Path]:
    """The run's trained models by name: teacher, student, student-baseline first, then any other
    model directory (e.g. bench.real_size_run's student-layout)."""
    known = [TEACHER, STUDENT, BASELINE]
    found = {name: run / name for name in known if (run / name).is_dir()}  # a broken one gets named on load
    if run.is_dir():
        found.update(
            {
                p.name: p
                for p in sorted(run.iterdir())
                if p.name not in known and (p / "config.json").is_file()
            }
        )
    return found
