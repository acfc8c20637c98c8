"""Train until validation entity F1 stops improving, and keep the best epoch's weights.

`--validation-forms K` holds K training forms out of every model's training (the test split stays
the one scored); `--patience P` then scores them after each epoch and stops once P epochs in a row
bring no better F1. `--epochs` becomes the budget's ceiling. The final model is the best epoch's,
trained on the other forms: it is not retrained on all of them (metrics.json says so).

transformers' EarlyStoppingCallback needs the Trainer's own evaluation loop, which scores windows;
entity F1 is scored on words merged across windows (distill/metrics.py), so the callback here runs
that scoring itself. Its history and the best weights live in the model's checkpoint directory,
written atomically, so a resumed run keeps counting where the killed one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from distill import atomic
from distill.machine import is_main_process

HISTORY = "docdistill_early_stopping.json"
BEST = "docdistill_best.safetensors"


class EarlyStopping(TrainerCallback):
    """Scores the model after each epoch (`score`: the model -> validation entity F1)."""

    def __init__(
        self, score: Callable[[torch.nn.Module], float], patience: int, directory: Path, forms: int
    ) -> None:
        self.score = score
        self.forms = forms
        self.patience = patience
        self.directory = directory
        saved = json.loads((directory / HISTORY).read_text()) if (directory / HISTORY).is_file() else {}
        self.history: list[list[float]] = saved.get("history", [])

    @property
    def best(self) -> tuple[float, float] | None:
        """(epoch, F1) of the best epoch so far (the earliest of equals)."""
        if not self.history:
            return None
        epoch, f1 = max(self.history, key=lambda h: (h[1], -h[0]))
        return epoch, f1

    def stale(self) -> int:
        """Epochs since the best one."""
        best = self.best
        return 0 if best is None else sum(1 for epoch, _ in self.history if epoch > best[0])

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.history and self.stale() >= self.patience:  # the killed run had already stopped
            control.should_training_stop = True

    def on_epoch_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            return
        was_training = model.training
        f1 = float(self.score(model))
        model.train(was_training)
        self.history.append([round(float(state.epoch or 0), 4), f1])
        if self.best is not None and self.best[0] == self.history[-1][0] and is_main_process():
            self.directory.mkdir(parents=True, exist_ok=True)
            state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}  # tied: copies
            atomic.write_bytes(self.directory / BEST, save(state_dict))
        if is_main_process():
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic.write_json(self.directory / HISTORY, {"history": self.history})
        if self.stale() >= self.patience:
            control.should_training_stop = True

    def restore_best(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights into `model` (nothing to do when the last epoch was best)."""
        if self.stale() == 0 or not (self.directory / BEST).is_file():
            return
        model.load_state_dict(load_file(str(self.directory / BEST)), strict=False)

    def record(self) -> dict[str, Any]:
        best = self.best
        return {
            "validation_forms": self.forms,
            "patience": self.patience,
            "history": self.history,
            "best_epoch": best[0] if best else None,
            "best_validation_f1": best[1] if best else None,
            "epochs_reached": self.history[-1][0] if self.history else 0,
            "stopped_early": self.stale() >= self.patience,
            "final_model": "the best epoch's weights, trained without the validation forms (not retrained)",
        }
