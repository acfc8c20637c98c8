"""The teacher stage: fine-tune the teacher here, or take the one the run resolved; score it once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from transformers import set_seed

from distill.builders import build_teacher
from distill.machine import is_main_process
from distill.models import Bundle
from distill.run_dir import TEACHER, TOKENIZERS
from distill.training.fit import FitResult
from distill.training.resolve import ResolvedRun
from distill.training.stages.common import (
    RunMetrics,
    encode_split,
    ensemble_record,
    ensemble_word_logits,
    model_record,
    scores,
    train_and_save,
    word_logits,
)


def teacher_stage(run: ResolvedRun, metrics: RunMetrics) -> list[Bundle]:
    """The run's teacher models (one, the members of an ensemble, or none), scored in metrics.json."""
    source = run.teachers.source
    if source == "train":
        return [train_teacher(run, metrics)]
    teachers = list(run.teachers.bundles)
    main = is_main_process()
    if (
        source == "run" and main
    ):  # reused, not retrained: said as the students say it (stages/common.finished)
        print(f"{TEACHER}: finished earlier in {run.dir}, kept", file=sys.stderr, flush=True)
    if source == "dir" and main and Path(run.teachers.paths[0]).resolve() != (run.dir / TEACHER).resolve():
        teachers[0].save(run.dir / TEACHER)  # the run keeps the teacher its students learnt from
    if main and teachers and TEACHER not in metrics.models:
        if source == "ensemble":
            logits = ensemble_word_logits(teachers, run.test, run.config, "scoring teacher")
            metrics.models[TEACHER] = ensemble_record(teachers, run.teachers.paths, scores(run, logits))
        else:
            logits = word_logits(teachers[0], run.test, run.config, "scoring teacher")
            metrics.models[TEACHER] = model_record(
                teachers[0], run.dir / TEACHER, scores(run, logits), None, "teacher"
            )
        metrics.save()
    return teachers


def train_teacher(run: ResolvedRun, metrics: RunMetrics) -> Bundle:
    config = run.config
    set_seed(config.seed)
    teacher = build_teacher(
        config.teacher,
        run.train_words,
        run.labels,
        run.dir / TOKENIZERS / TEACHER,
        config.teacher_as_is,
        config.teacher_image,
    )
    windows = encode_split(
        teacher.encoder(config.max_length, config.stride), run.train, desc="encoding (teacher)"
    )
    epochs = config.teacher_epochs or config.epochs
    result = train_and_save(run, TEACHER, teacher, windows, config.teacher_lr, epochs, run.teacher_terms)
    if is_main_process():
        logits = word_logits(teacher, run.test, config, "scoring teacher")
        record = model_record(teacher, run.dir / TEACHER, scores(run, logits), result, "teacher")
        record["loss"] = teacher_loss_record(run, result)
        metrics.models[TEACHER] = record
        metrics.save()
    return teacher


def teacher_loss_record(run: ResolvedRun, result: FitResult) -> dict[str, Any]:
    """metrics.json's record of the loss the teacher was fine-tuned on: its declared terms (--teacher-loss)."""
    return {
        "kind": run.config.teacher_loss,
        "terms": [t.record() for t in run.teacher_terms],
        **(result.class_weights or {}),
    }
