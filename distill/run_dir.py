"""The run directory: the contract between training, export and the bench (see DESIGN.md)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import datasets

from distill import atomic
from distill.config import TrainConfig
from distill.data import describe_source, load_source
from distill.errors import DistillError
from distill.labels import LabelSet, data_labels, resolve_labels

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


def _source_options(config: TrainConfig) -> dict:
    return {
        "word_boxes": config.word_boxes,
        "synthetic_forms": config.synthetic_forms,
        "max_words": config.max_words,
        "seed": config.seed,
    }


def describe_run_data(config: TrainConfig) -> str:
    """One line naming a run's data and the split it is scored on."""
    split = f"{config.holdout_forms} held-out training forms" if config.holdout_forms else "the test split"
    return f"{describe_source(config.data, **_source_options(config))}, scored on {split}"


def run_labels(data: datasets.DatasetDict) -> LabelSet:
    """The label set of data from load_run_data (its ner_tags names are the run's tags)."""
    return data_labels(data)


def load_run_data(config: TrainConfig) -> datasets.DatasetDict:
    """The dataset a run was trained and scored on, rebuilt from its config, in the run's labels."""
    return load_run_data_noted(config)[0]


def load_run_data_noted(config: TrainConfig) -> tuple[datasets.DatasetDict, list[str]]:
    """load_run_data, with what a report should say about the data: how boxes were normalised
    (sources that tell), forms without an image, I- tags repaired."""
    data, _, repaired = resolve_labels(load_source(config.data, **_source_options(config)), config.labels)
    notes = [
        n
        for split in data.values()
        for n in (split.info.description or "").splitlines()
        if n.startswith("note:")
    ]
    if repaired:
        notes.append(
            f"note: {repaired} I- tag(s) without a B- before them were repaired to B- (seqeval reads them so)"
        )
    data = _held_out(data, config)
    return data, [n.removeprefix("note:").strip() for n in notes]


def _held_out(data: datasets.DatasetDict, config: TrainConfig) -> datasets.DatasetDict:
    if config.holdout_forms <= 0:
        return data
    train = data["train"]
    if config.holdout_forms >= len(train):
        raise DistillError(
            f"--holdout-forms ({config.holdout_forms}) must be fewer than the {len(train)} training forms"
        )
    # The same held-out forms whatever the run's seed, so runs tuned on them compare like for like.
    split = train.train_test_split(test_size=config.holdout_forms, seed=0, shuffle=True)
    return datasets.DatasetDict(train=split["train"], test=split["test"])


def count_empty_forms(data: datasets.DatasetDict) -> dict[str, int]:
    """Forms without a single word, per split: they load, but have nothing to train on or score."""
    return {split: sum(1 for tokens in data[split]["tokens"] if not tokens) for split in data}


def note_empty_forms(counts: dict[str, int]) -> None:
    """One line on stderr when some forms have no words (the run skips them in training)."""
    if any(counts.values()):
        parts = ", ".join(f"{n} in {split}" for split, n in counts.items() if n)
        print(
            f"note: {sum(counts.values())} form(s) without words ({parts}): "
            "skipped for training; in evaluation they have nothing to score",
            file=sys.stderr,
            flush=True,
        )
