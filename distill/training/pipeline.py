"""The training run: teacher fine-tune -> cached teacher word logits -> student distillation -> scores.

Everything lands in the run directory of DESIGN.md; each file atomically, so a run killed at any
point leaves either a finished model or a checkpoint to resume from, never half of either.
"""

from __future__ import annotations

from pathlib import Path

from distill.config import TrainConfig
from distill.data.run_data import note_empty_forms
from distill.machine import is_main_process
from distill.run_dir import mark_latest
from distill.training.resolve import Options, record_run, resolve_run
from distill.training.stages.common import RunMetrics, publish
from distill.training.stages.students import student_stage
from distill.training.stages.teacher import teacher_stage


def run_training(options: Options | TrainConfig) -> Path:
    """Run the stages the options ask for; return the run directory."""
    run = resolve_run(options)  # options, labels, data and teachers settled: nothing written before
    record_run(run, is_main_process())  # config.toml, now that the run stands
    metrics = RunMetrics(run)
    if is_main_process():
        note_empty_forms(metrics["empty_forms"])
    teachers = teacher_stage(run, metrics)
    if run.trains_students:
        student_stage(run, teachers, metrics)
    publish(run, metrics, teachers)  # metrics.json, training.md
    if is_main_process():
        mark_latest(run.dir)
    return run.dir
