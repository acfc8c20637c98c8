"""What every stage does the same way: encode forms, score a model, train and save it, record it."""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from distill import atomic
from distill.config import TrainConfig
from distill.data.run_data import count_empty_forms, describe_run_data
from distill.machine import is_main_process, package_versions
from distill.metrics import score_word_logits
from distill.models import Bundle
from distill.run_dir import METRICS, dir_size, read_json
from distill.terms.declared import LossTerm
from distill.terms.word_vectors import detach_projection
from distill.training.early_stopping import EarlyStopping
from distill.training.fit import CHECKPOINTS, FitResult, clear_checkpoints, fit
from distill.training.report import write_training_report
from distill.training.resolve import ResolvedRun
from distill.training.teacher_targets import ensemble_targets, word_targets
from distill.windows import WindowEncoder, takes_image

PACKAGES = ("torch", "transformers", "datasets", "onnxruntime")


def encode_split(
    encoder: WindowEncoder,
    split: datasets.Dataset,
    word_targets: list[np.ndarray] | None = None,
    desc: str = "encoding",
    tags: Sequence[Sequence[int]] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Every window of every form, labelled (and with teacher targets when given).

    `tags`: per form, the labels to learn instead of its ner_tags (-100 where a word has none).
    """
    windows: list[dict[str, np.ndarray]] = []
    for i, form in enumerate(tqdm(split, desc=desc, leave=False)):
        targets = word_targets[i] if word_targets is not None else None
        labels = tags[i] if tags is not None else form["ner_tags"]
        windows.extend(encoder.encode_form(form["tokens"], form["bboxes"], form["image"], labels, targets))
    return windows


def word_logits(bundle: Bundle, split: datasets.Dataset, config: TrainConfig, desc: str) -> list[np.ndarray]:
    return word_targets(bundle, split, config.max_length, config.stride, config.eval_batch_size, desc)


def ensemble_word_logits(
    members: list[Bundle], split: datasets.Dataset, config: TrainConfig, desc: str
) -> list[np.ndarray]:
    """The members' word logits, averaged form by form (see teacher_targets.ensemble_targets)."""
    return ensemble_targets(members, split, config.max_length, config.stride, config.eval_batch_size, desc)


def scores(run: ResolvedRun, logits: list[np.ndarray]) -> dict[str, Any]:
    """Entity and word scores on the run's evaluation split (the test split, or held-out forms)."""
    return score_word_logits(run.test["ner_tags"], logits, run.labels)


def model_record(
    bundle: Bundle, path: Path, scored: dict, fit_result: FitResult | None, role: str
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "role": role,
        "model_type": bundle.model_type,
        "architecture": type(bundle.model).__name__,
        "params": int(sum(p.numel() for p in bundle.model.parameters())),
        "size_bytes": dir_size(path),
        **scored,
    }
    if fit_result is not None:
        record.update(
            train_seconds=round(fit_result.train_seconds, 2),
            train_steps=fit_result.steps,
            world_size=fit_result.world_size,
        )
        if fit_result.resumed_from:
            record["resumed_from"] = Path(fit_result.resumed_from).name
        if fit_result.early_stopping is not None:
            record["early_stopping"] = fit_result.early_stopping
    return record


def ensemble_record(members: Sequence[Bundle], paths: Sequence[str], scored: dict) -> dict[str, Any]:
    return {
        "role": "teacher",
        "model_type": "ensemble",
        "architecture": "ensemble of " + ", ".join(type(m.model).__name__ for m in members),
        "members": list(paths),
        "params": int(sum(p.numel() for m in members for p in m.model.parameters())),
        "size_bytes": sum(dir_size(Path(path)) for path in paths),
        **scored,
    }


def train_and_save(
    run: ResolvedRun,
    name: str,
    bundle: Bundle,
    windows: list[dict],
    lr: float,
    epochs: float,
    terms: Sequence[LossTerm],
    teacher: Bundle | None = None,
) -> FitResult:
    """Train one model of the run on its windows and save it to <run>/<name>; its checkpoints go.

    `teacher`: the frozen teacher, for terms that run it in the loss (layer-to-layer distillation).
    """
    stopper = early_stopping(run, name, bundle)
    result = fit(
        bundle, windows, run.config, run.dir, name, lr, epochs, terms, run.config.box_lr, teacher, stopper
    )
    detach_projection(bundle.model)  # the feature and layer projections are training scaffolding
    if is_main_process():
        bundle.save(run.dir / name)
        clear_checkpoints(run.dir, name)
    return result


def early_stopping(run: ResolvedRun, name: str, bundle: Bundle) -> EarlyStopping | None:
    """With --validation-forms and --patience: the callback that scores them after each epoch."""
    validation = run.validation
    if validation is None or run.config.patience <= 0:
        return None

    def score(model: torch.nn.Module) -> float:
        logits = word_logits(bundle, validation, run.config, f"validating {name}")
        return float(score_word_logits(validation["ner_tags"], logits, run.labels)["f1"])

    return EarlyStopping(score, run.config.patience, run.dir / CHECKPOINTS / name, len(validation))


def finished(run: ResolvedRun, metrics: RunMetrics, name: str) -> bool:
    """A model saved and scored before an interruption: kept (with a line saying so), not retrained."""
    done = run.config.resume and (run.dir / name / "config.json").is_file() and name in metrics.models
    if done and is_main_process():
        print(f"{name}: finished earlier in {run.dir}, kept", file=sys.stderr, flush=True)
    return done


class RunMetrics:
    """metrics.json: what the run is (data, labels, encoding, versions) and a record per model.

    A resumed run starts from the file it left, so models finished before keep their records.
    Only rank 0 writes.
    """

    def __init__(self, run: ResolvedRun) -> None:
        self.path = run.dir / METRICS
        self.main = is_main_process()
        self.data: dict[str, Any] = read_json(self.path) if self.path.is_file() else {}
        self.data.setdefault("models", {})
        config = run.config
        self.data.update(
            data=describe_run_data(config),
            labels=list(run.labels.types),
            data_notes=list(run.data_notes),
            seed=config.seed,
            eval_split=f"{config.holdout_forms} held-out training forms" if config.holdout_forms else "test",
            train_forms=len(run.train),
            test_forms=len(run.test),
            test_words=sum(len(t) for t in run.test["ner_tags"]),
            versions={"python": platform.python_version(), **package_versions(PACKAGES)},
            encoding={"max_length": config.max_length, "stride": config.stride},
            empty_forms=count_empty_forms(run.data),  # no windows: skipped for training, nothing to score
        )

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        return self.data["models"]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def save(self) -> None:
        if self.main:
            atomic.write_json(self.path, self.data)


def blank_page_notes(teachers: Sequence[Bundle], data: datasets.DatasetDict) -> list[str]:
    """An image model scores forms without an image on a blank page (windows.py): the report says so."""
    if not any(takes_image(t.model.config) for t in teachers):
        return []
    counts = {split: sum(image is None for image in _raw_images(ds)) for split, ds in data.items()}
    if not any(counts.values()):
        return []
    per_split = ", ".join(f"{n} of {len(data[s])} {s} forms" for s, n in counts.items())
    return [f"no page image for {per_split}: the LayoutLMv3 teacher saw a blank page for them"]


def _raw_images(split: datasets.Dataset) -> list[Any]:
    return split.cast_column("image", datasets.Image(decode=False))["image"]  # no decoding to count


def publish(run: ResolvedRun, metrics: RunMetrics, teachers: Sequence[Bundle]) -> None:
    """metrics.json (with the data notes), training.md (rank 0)."""
    if not is_main_process():
        return
    metrics["data_notes"] = list(run.data_notes) + blank_page_notes(teachers, run.data)
    metrics.save()
    write_training_report(metrics.data, Path(run.config.report_dir), run.dir)
