"""The student stage: the distilled student and its baseline, same initialisation, same number of steps.

The teacher's word targets are computed once (or read from the run's cache) over the training forms
and, with --transfer-copies, their augmented copies; a collapsed teacher stops here unless asked.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np
from transformers import set_seed

from distill.builders import build_student
from distill.errors import DistillError
from distill.machine import is_main_process
from distill.models import Bundle
from distill.option_checks import ocr_scales
from distill.predict.ocr import OcrOptions, available_cores
from distill.predict.ocr_views import ocr_views
from distill.run_dir import BASELINE, STUDENT, TOKENIZERS
from distill.terms.declared import PLAIN, LossTerm, distils, intermediate_matches_record, uses
from distill.training.resolve import ResolvedRun
from distill.training.stages.collapse import describe_collapse, teacher_collapse
from distill.training.stages.common import (
    RunMetrics,
    encode_split,
    finished,
    model_record,
    publish,
    scores,
    train_and_save,
    word_logits,
)
from distill.training.stages.two_stage import finish as finish_two_stage
from distill.training.stages.two_stage import prediction_terms, train_layers_first
from distill.training.teacher_init import teacher_student
from distill.training.teacher_targets import cached_targets, exported_teacher
from distill.training.tokenizers import training_encoder
from distill.training.transfer_set import (
    TransferRecipe,
    TransferSet,
    embedding_neighbours,
    transfer_set,
    with_views,
)
from distill.windows import takes_image

OCR_CACHE = "ocr-cache"  # Tesseract's reading of each training page, per setting (ocr_views.read_pages)


def student_stage(run: ResolvedRun, teachers: Sequence[Bundle], metrics: RunMetrics) -> None:
    """Train and score the student (and, when it distils, its baseline) into the run directory."""
    config = run.config
    plans: list[tuple[str, Sequence[LossTerm]]] = [(STUDENT, run.terms)]
    if config.baseline and run.distils:
        plans.append((BASELINE, PLAIN))
    transfer = with_transfer_set(run, teachers, metrics)  # the distilled student's (or the control's)
    forms = datasets.concatenate_datasets([run.train, transfer.forms]) if transfer else run.train
    targets = None
    if run.distils:
        targets = teacher_targets(run, teachers, forms, metrics)
        check_teacher(run, targets, metrics)
    metrics["distillation"] = distillation_record(run)
    windows: dict[bool, list[dict]] = {}  # by whether it sees the transfer set: the baseline never does
    for name, terms in plans:
        if finished(run, metrics, name):
            continue
        distilled = distils(terms)
        copies = name == STUDENT and transfer is not None
        set_seed(config.seed)  # the same initialisation for the distilled and the baseline student
        student, made = build_run_student(run, teachers)
        if not windows:
            windows = encode_students(run, student, live_teacher(run, teachers), transfer, targets)
        epochs = config.epochs
        if copies and config.transfer_steps == "same":  # the baseline's steps: a copy displaces a form
            epochs = config.epochs * len(windows[False]) / len(windows[True])
        teacher = live_teacher(run, teachers) if distilled else None
        schedule = None
        if distilled and config.transfer_schedule == "two-stage":  # TinyBERT's: layers, then predictions
            schedule = train_layers_first(run, name, student, windows[copies], terms, teacher, epochs)
            terms, epochs, teacher = prediction_terms(terms), config.prediction_epochs, None
        result = train_and_save(
            run, name, student, windows[copies], config.student_lr, epochs, terms, teacher
        )
        if schedule is not None:
            finish_two_stage(run, name)
        if is_main_process():
            logits = word_logits(student, run.test, config, f"scoring {name}")
            record = model_record(student, run.dir / name, scores(run, logits), result, "student")
            record.update(distilled=distilled, layout=config.student_layout, base=config.student, **made)
            if distilled and intermediate_matches_record(run.terms):
                record["intermediate_matches"] = intermediate_matches_record(run.terms)
            if schedule is not None:
                record["schedule"] = schedule
            metrics.models[name] = record
            metrics.save()


def build_run_student(run: ResolvedRun, teachers: Sequence[Bundle]) -> tuple[Bundle, dict[str, Any]]:
    """The student the run resolved, and what its metrics record says about how it was made."""
    config = run.config
    if not run.student.from_teacher:
        student = build_student(
            config.student, run.train_words, run.labels, config.student_layout, run.dir / TOKENIZERS / STUDENT,
            config.box_init,
        )  # fmt: skip
        return student, {}
    student, chosen = teacher_student(
        config.student, teachers[0], config.student_image, config.teacher_layer_choice
    )
    return student, {"teacher_layers": chosen, "image": takes_image(student.model.config)}


def live_teacher(run: ResolvedRun, teachers: Sequence[Bundle]) -> Bundle | None:
    """The teacher the distilled student's loss runs on each batch (its layer-to-layer terms), if any."""
    live = uses(run.terms, "teacher_hidden_states") or uses(run.terms, "teacher_attentions")
    return teachers[0] if live else None


def with_transfer_set(
    run: ResolvedRun, teachers: Sequence[Bundle], metrics: RunMetrics
) -> TransferSet | None:
    """The training forms' augmented copies when the run asks for them (see transfer_set.py)."""
    config = run.config
    recipe = TransferRecipe.of(config)
    if not recipe.active:
        return None
    neighbours = None
    if recipe.copies and recipe.candidates == "neighbours":
        # The teacher's own word embeddings (the first member of an ensemble), for the control too.
        if not teachers:
            raise DistillError("--transfer-candidates neighbours needs a teacher: name one, or pass random")
        neighbours = embedding_neighbours(teachers[0], run.train_words)
    transfer = transfer_set(run.train, recipe, config.seed, neighbours) if recipe.copies else None
    for scale in ocr_scales(recipe.ocr):  # the training pages as distill.predict reads a scan
        views = ocr_views(run.train, OcrOptions(scale=scale), config.word_boxes, workers=available_cores(),
                          cache=run.dir / OCR_CACHE)  # fmt: skip
        transfer = with_views(transfer, views, recipe.hard_tags)
    assert transfer is not None
    metrics["transfer_set"] = {
        **recipe.record(),
        "forms": len(transfer.forms),
        "changed_words": round(transfer.changed_words / max(1, transfer.words), 4),
        "neighbours_of": len(neighbours) if neighbours is not None else None,
    }
    return transfer


def teacher_targets(
    run: ResolvedRun, teachers: Sequence[Bundle], forms: datasets.Dataset, metrics: RunMetrics
) -> list[np.ndarray]:
    """The teacher's word targets for `forms`: from the run's cache, or computed once and cached."""
    start = time.perf_counter()
    with_vectors = uses(run.terms, "teacher_vectors")
    exported = None
    if run.config.teacher_targets_from == "export" and run.teachers.source == "dir":
        exported = exported_teacher(run.teachers.paths, with_vectors)
    metrics["teacher_targets_from"] = exported.describe() if exported is not None else "pytorch"
    targets, cached = cached_targets(
        run.dir, teachers, forms, run.config, with_vectors, is_main_process(), exported
    )
    if not cached or "teacher_cache_seconds" not in metrics:
        metrics["teacher_cache_seconds"] = round(time.perf_counter() - start, 2)
        # "cache": another run computed them (a study shares one teacher's targets), so their cost
        # was paid there, not here; a resumed run keeps what its first part recorded.
        metrics["teacher_targets"] = "cache" if cached else "computed"
    return targets


def check_teacher(run: ResolvedRun, targets: list[np.ndarray], metrics: RunMetrics) -> None:
    """Refuse to distil a collapsed teacher (unless --distil-collapsed-teacher); say so either way."""
    collapse = teacher_collapse(targets[: len(run.train)], run.train["ner_tags"], run.labels)
    if collapse is None:
        metrics.data.pop("teacher_collapse", None)
        return
    metrics["teacher_collapse"] = {**collapse, "distilled_anyway": run.config.distil_collapsed_teacher}
    if run.config.distil_collapsed_teacher:
        if is_main_process():
            print(f"note: {describe_collapse(collapse)}; distilled anyway (--distil-collapsed-teacher)",
                  file=sys.stderr, flush=True)  # fmt: skip
        return
    publish(run, metrics, [])  # training.md says why the students are missing
    raise DistillError(
        f"{describe_collapse(collapse)}, so its students would learn the collapse: retrain it (e.g. a lower "
        "--teacher-lr, more epochs) or pass --distil-collapsed-teacher to distil from it anyway",
        run.dir,
    )


def encode_students(
    run: ResolvedRun,
    student: Bundle,
    teacher: Bundle | None,
    transfer: TransferSet | None,
    targets: list[np.ndarray] | None,
) -> dict[bool, list[dict]]:
    """The students' windows, once: the training forms, plus the transfer set (True) for the student.

    `teacher`: the one run in the distilled student's loss; where it reads fields the student does
    not, the windows are its own (the same tokens), and each model takes its own fields. A copy's
    windows carry the tags its student learns: none on a changed word unless --transfer-hard-tags.
    """
    encoder = training_encoder(student, teacher, run.config.max_length, run.config.stride)
    train = len(run.train)
    plain = encode_split(encoder, run.train, targets[:train] if targets else None, desc="encoding (students)")
    windows = {False: plain, True: plain}
    if transfer is not None:
        extra = targets[train:] if targets is not None else None
        copies = encode_split(encoder, transfer.forms, extra, "encoding (transfer set)", transfer.hard_tags)
        windows[True] = plain + copies
    return windows


def distillation_record(run: ResolvedRun) -> dict[str, Any]:
    """metrics.json's `distillation`: the declared loss terms and the options behind them."""
    config = run.config
    return {
        "distilled": run.distils,
        "terms": [t.record() for t in run.terms],
        "temperature": config.temperature,
        "alpha": config.alpha,
        "feature_weight": config.feature_weight,
        "feature_loss": config.feature_loss,
        "hidden_weight": config.hidden_weight,
        "hidden_loss": config.hidden_loss,
        "attention_weight": config.attention_weight,
        "transfer_copies": config.transfer_copies,
        "transfer_set": TransferRecipe.of(config).record() if TransferRecipe.of(config).active else None,
        "teacher": (config.teacher_dir or config.teacher) if run.distils else None,
    }
