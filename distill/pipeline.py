"""The training run: teacher fine-tune -> cached teacher word logits -> student distillation -> scores.

Everything lands in the run directory of DESIGN.md; each file atomically, so a run killed at any
point leaves either a finished model or a checkpoint to resume from, never half of either.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm
from transformers import set_seed

from distill import atomic
from distill.config import TrainConfig
from distill.distillation import detach_projection
from distill.errors import DistillError
from distill.fit import FitResult, clear_checkpoints, fit
from distill.labels import LabelSet, check_model_labels
from distill.layer_match import training_encoder
from distill.machine import is_main_process, package_versions
from distill.metrics import score_word_logits
from distill.models import Bundle, build_teacher, load_bundle
from distill.preflight import check_settings
from distill.report import write_training_report
from distill.run_dir import (
    BASELINE,
    CONFIG,
    METRICS,
    STUDENT,
    TEACHER,
    TOKENIZERS,
    check_resumable,
    count_empty_forms,
    describe_run_data,
    dir_size,
    load_run_data_noted,
    mark_latest,
    new_run_dir,
    note_empty_forms,
    read_json,
    run_labels,
)
from distill.teacher_init import is_teacher_spec, run_student
from distill.teacher_targets import cached_targets, ensemble_targets, word_targets
from distill.transfer_set import transfer_set
from distill.windows import WindowEncoder, takes_image

PACKAGES = ("torch", "transformers", "datasets", "onnxruntime")


def encode_split(
    encoder: WindowEncoder,
    split: datasets.Dataset,
    word_targets: list[np.ndarray] | None = None,
    desc: str = "encoding",
) -> list[dict[str, np.ndarray]]:
    """Every window of every form, labelled (and with teacher targets when given)."""
    windows: list[dict[str, np.ndarray]] = []
    for i, form in enumerate(tqdm(split, desc=desc, leave=False)):
        targets = word_targets[i] if word_targets is not None else None
        windows.extend(
            encoder.encode_form(form["tokens"], form["bboxes"], form["image"], form["ner_tags"], targets)
        )
    return windows


def word_logits(bundle: Bundle, split: datasets.Dataset, config: TrainConfig, desc: str) -> list[np.ndarray]:
    return word_targets(bundle, split, config.max_length, config.stride, config.eval_batch_size, desc)


def ensemble_word_logits(
    members: list[Bundle], split: datasets.Dataset, config: TrainConfig, desc: str
) -> list[np.ndarray]:
    """The members' word logits, averaged form by form (see teacher_targets.ensemble_targets)."""
    return ensemble_targets(members, split, config.max_length, config.stride, config.eval_batch_size, desc)


def ensemble_record(members: list[Bundle], paths: list[str], scores: dict) -> dict[str, Any]:
    return {
        "role": "teacher",
        "model_type": "ensemble",
        "architecture": "ensemble of " + ", ".join(type(m.model).__name__ for m in members),
        "members": paths,
        "params": int(sum(p.numel() for m in members for p in m.model.parameters())),
        "size_bytes": sum(dir_size(Path(path)) for path in paths),
        **scores,
    }


def model_record(
    bundle: Bundle, path: Path, scores: dict, fit_result: FitResult | None, role: str
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "role": role,
        "model_type": bundle.model_type,
        "architecture": type(bundle.model).__name__,
        "params": int(sum(p.numel() for p in bundle.model.parameters())),
        "size_bytes": dir_size(path),
        **scores,
    }
    if fit_result is not None:
        record.update(
            train_seconds=round(fit_result.train_seconds, 2),
            train_steps=fit_result.steps,
            world_size=fit_result.world_size,
        )
        if fit_result.resumed_from:
            record["resumed_from"] = Path(fit_result.resumed_from).name
        if fit_result.loss is not None:
            record["loss"] = fit_result.loss
    return record


def load_labelled(path: str | Path, labels: LabelSet) -> Bundle:
    """A fine-tuned model directory, refused when it was trained on other labels than the run's."""
    bundle = load_bundle(path)
    check_model_labels(bundle.model.config.id2label, labels, path)
    return bundle


def blank_page_notes(teachers: list[Bundle], data: datasets.DatasetDict) -> list[str]:
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


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), **package_versions(PACKAGES)}


def train_and_save(
    name: str,
    bundle: Bundle,
    windows: list[dict],
    config: TrainConfig,
    run: Path,
    lr: float,
    epochs: float,
    distill: bool,
    box_lr: float = 0.0,
    loss: str = "ce",
    teacher: Bundle | None = None,
) -> FitResult:
    result = fit(bundle, windows, config, run, name, lr, epochs, distill, box_lr, loss, teacher)
    detach_projection(bundle.model)  # feature distillation's projection is training scaffolding
    if is_main_process():
        bundle.save(run / name)
        clear_checkpoints(run, name)
    return result


def run_training(config: TrainConfig) -> Path:
    """Run the stages `config.stage` asks for; return the run directory."""
    config.validate()
    check_settings(config)  # before any data or model is loaded
    run = new_run_dir(config.output_dir)
    config = config.updated({"output_dir": str(run)})
    check_resumable(run, config)
    main = is_main_process()
    if main:
        run.mkdir(parents=True, exist_ok=True)
        config.write(run / CONFIG)
    data, notes = load_run_data_noted(config)
    labels = run_labels(data)
    # config.toml records the labels the run used: reruns and later stages read the same set.
    config = config.updated({"labels": labels.option()})
    if main:
        config.write(run / CONFIG)
    train, test = data["train"], data["test"]
    words = [w for form in train["tokens"] for w in form]
    gold = test["ner_tags"]
    metrics: dict[str, Any] = read_json(run / METRICS) if (run / METRICS).is_file() else {}
    metrics.setdefault("models", {})
    metrics.update(
        data=describe_run_data(config),
        labels=list(labels.types),
        data_notes=notes,
        seed=config.seed,
        eval_split=f"{config.holdout_forms} held-out training forms" if config.holdout_forms else "test",
        train_forms=len(train),
        test_forms=len(test),
        test_words=sum(len(t) for t in gold),
        versions=versions(),
        encoding={"max_length": config.max_length, "stride": config.stride},
        empty_forms=count_empty_forms(data),  # no windows: skipped for training, nothing to score
    )
    if main:
        note_empty_forms(metrics["empty_forms"])

    def save_metrics() -> None:
        if main:
            atomic.write_json(run / METRICS, metrics)

    # --- teacher ---
    teacher_epochs = config.teacher_epochs or config.epochs
    teachers: list[Bundle] = []  # one model, or the members of an ensemble (--teacher-dir A,B)
    members = [d for d in config.teacher_dir.split(",") if d]
    if len(members) > 1:
        teachers = [load_labelled(d, labels) for d in members]
        if main and TEACHER not in metrics["models"]:
            scores = score_word_logits(
                gold, ensemble_word_logits(teachers, test, config, "scoring teacher"), labels
            )
            metrics["models"][TEACHER] = ensemble_record(teachers, members, scores)
    elif members:
        teachers = [load_labelled(members[0], labels)]
        if main and Path(members[0]).resolve() != (run / TEACHER).resolve():
            teachers[0].save(run / TEACHER)
    elif (run / TEACHER / "config.json").is_file() and (config.resume or config.stage == "student"):
        teachers = [load_labelled(run / TEACHER, labels)]  # finished earlier in this run directory
    elif config.stage == "student" and not config.distills and not is_teacher_spec(config.student):
        pass  # plain fine-tuning of the student: no teacher to train, load or score
    elif config.stage == "student":
        why = (
            f"--student {config.student} is built from the fine-tuned teacher"
            if is_teacher_spec(config.student)
            else "--stage student needs a fine-tuned teacher"
        )
        raise DistillError(
            f"{why}: pass --teacher-dir, train one with --stage teacher, or fine-tune a student "
            "of its own without distillation (--alpha 0)",
            run,
        )
    else:
        set_seed(config.seed)
        teacher = build_teacher(
            config.teacher,
            words,
            labels,
            run / TOKENIZERS / TEACHER,
            config.teacher_as_is,
            config.teacher_image,
        )
        windows = encode_split(
            teacher.encoder(config.max_length, config.stride), train, desc="encoding (teacher)"
        )
        result = train_and_save(
            TEACHER,
            teacher,
            windows,
            config,
            run,
            config.teacher_lr,
            teacher_epochs,
            False,
            config.box_lr,
            config.teacher_loss,
        )
        teachers = [teacher]
        if main:
            scores = score_word_logits(gold, word_logits(teacher, test, config, "scoring teacher"), labels)
            metrics["models"][TEACHER] = model_record(teacher, run / TEACHER, scores, result, "teacher")
            save_metrics()
    if main and len(teachers) == 1 and TEACHER not in metrics["models"]:
        scores = score_word_logits(gold, word_logits(teachers[0], test, config, "scoring teacher"), labels)
        metrics["models"][TEACHER] = model_record(teachers[0], run / TEACHER, scores, None, "teacher")

    # --- students ---
    if config.stage in ("student", "all"):
        distills = config.distills
        plans = [(STUDENT, distills)]
        if config.baseline and distills:
            plans.append((BASELINE, False))
        student_forms = train
        if distills and config.transfer_copies > 0:
            transfer = transfer_set(train, config.transfer_copies, config.seed)
            student_forms = datasets.concatenate_datasets([train, transfer])
            metrics["transfer_set"] = {"copies": config.transfer_copies, "forms": len(transfer)}
        targets = None
        if teachers and distills:  # alpha 0 without features is plain fine-tuning: no targets
            start = time.perf_counter()
            targets, cached = cached_targets(
                run, teachers, student_forms, config, config.feature_weight > 0, main
            )
            if not cached or "teacher_cache_seconds" not in metrics:
                metrics["teacher_cache_seconds"] = round(time.perf_counter() - start, 2)
        metrics["distillation"] = {
            "temperature": config.temperature,
            "alpha": config.alpha,
            "feature_weight": config.feature_weight,
            "feature_loss": config.feature_loss,
            "hidden_weight": config.hidden_weight,
            "hidden_loss": config.hidden_loss,
            "attention_weight": config.attention_weight,
            "transfer_copies": config.transfer_copies,
            "teacher": config.teacher_dir or config.teacher,
        }
        windows: dict[bool, list[dict]] = {}  # by distilled: the baseline never sees the transfer set
        for name, distill in plans:
            if (run / name / "config.json").is_file() and config.resume and name in metrics["models"]:
                continue  # finished before an interruption
            set_seed(config.seed)  # the same initialisation for the distilled and the baseline student
            student, made = run_student(config, words, labels, run / TOKENIZERS / STUDENT, teachers)
            if not windows:
                teacher = teachers[0] if len(teachers) == 1 else None
                encoder = training_encoder(
                    student, teacher, config.layer_matching, config.max_length, config.stride
                )
                windows[False] = encode_split(encoder, train, targets, desc="encoding (students)")
                windows[True] = windows[False]
                if len(student_forms) > len(train):
                    extra = targets[len(train) :] if targets is not None else None
                    transfer_forms = student_forms.select(range(len(train), len(student_forms)))
                    windows[True] = windows[False] + encode_split(
                        encoder, transfer_forms, extra, desc="encoding (transfer set)"
                    )
            # The same number of optimiser steps as the baseline, however large the transfer set.
            epochs = config.epochs * len(windows[False]) / len(windows[distill])
            result = train_and_save(
                name,
                student,
                windows[distill],
                config,
                run,
                config.student_lr,
                epochs,
                distill,
                config.box_lr,
                teacher=teachers[0] if distill and config.layer_matching else None,
            )
            if main:
                scores = score_word_logits(
                    gold, word_logits(student, test, config, f"scoring {name}"), labels
                )
                record = model_record(student, run / name, scores, result, "student")
                record.update(distilled=distill, layout=config.student_layout, base=config.student, **made)
                if distill and result.intermediate_matches:
                    record["intermediate_matches"] = result.intermediate_matches
                metrics["models"][name] = record
                save_metrics()
    if main:
        metrics["data_notes"] = notes + blank_page_notes(teachers, data)
        save_metrics()
        write_training_report(metrics, Path(config.report_dir), run)
        mark_latest(run)
    return run
