"""TinyBERT's two-stage task distillation (`--transfer-schedule two-stage`).

TinyBERT first distils the intermediate layers on the augmented data (20 epochs), then the
predictions (3 epochs). Here stage one trains the distilled student on its layer-to-layer terms
alone (hidden states, attentions), the classifier frozen since no term reaches it; stage two trains
the usual way on the remaining terms (soft targets, hard labels, word vectors) for
`--prediction-epochs`. Both stages see the same windows, transfer set included.

Stage one ends with its weights kept under the run's checkpoints (`<name>-layers/done.safetensors`,
written atomically), so a run killed in stage two resumes there without redoing stage one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safetensors.torch import load_file, save

from distill import atomic
from distill.machine import is_main_process
from distill.models import Bundle
from distill.terms.declared import LossTerm, is_layer_term
from distill.terms.word_vectors import detach_projection
from distill.training.fit import CHECKPOINTS, clear_checkpoints, fit
from distill.training.resolve import ResolvedRun

LAYER_STAGE = "layers"
DONE = "done.safetensors"
CLASSIFIER = "classifier."


def stage_name(name: str) -> str:
    return f"{name}-{LAYER_STAGE}"


def prediction_terms(terms: Sequence[LossTerm]) -> tuple[LossTerm, ...]:
    return tuple(t for t in terms if not is_layer_term(t))


def train_layers_first(
    run: ResolvedRun,
    name: str,
    student: Bundle,
    windows: list[dict],
    terms: Sequence[LossTerm],
    teacher: Bundle | None,
    epochs: float,
) -> dict[str, Any]:
    """Stage one on `student` in place (or its saved result, on resume); what metrics.json records."""
    directory = run.dir / CHECKPOINTS / stage_name(name)
    layered = [t for t in terms if is_layer_term(t)]
    record: dict[str, Any] = {"schedule": "two-stage", "layer_epochs": epochs,
                              "prediction_epochs": run.config.prediction_epochs}  # fmt: skip
    if (directory / DONE).is_file():
        student.model.load_state_dict(load_file(str(directory / DONE)), strict=False)
        return {**record, "layer_stage": "kept from an earlier part of the run"}
    head = [p for n, p in student.model.named_parameters() if n.startswith(CLASSIFIER)]
    for parameter in head:  # no layer term reaches the classifier: frozen, as DDP needs every gradient
        parameter.requires_grad_(False)
    result = fit(student, windows, run.config, run.dir, stage_name(name), run.config.student_lr, epochs,
                 layered, teacher=teacher)  # fmt: skip
    for parameter in head:
        parameter.requires_grad_(True)
    detach_projection(student.model)
    if is_main_process():
        state = {k: v.detach().cpu().clone() for k, v in student.model.state_dict().items()}
        clear_checkpoints(run.dir, stage_name(name))
        atomic.write_bytes(directory / DONE, save(state))
    return {**record, "layer_steps": result.steps, "layer_train_seconds": round(result.train_seconds, 2)}


def finish(run: ResolvedRun, name: str) -> None:
    """Drop stage one's weights once the student is saved."""
    if is_main_process():
        clear_checkpoints(run.dir, stage_name(name))
