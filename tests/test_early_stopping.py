"""Issue 28: models trained until validation F1 stops improving, on forms held out of training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from distill.config import PRESETS, TrainConfig
from distill.errors import DistillError
from distill.training.early_stopping import EarlyStopping
from tests.conftest import run_cli

SMALL = ["--preset", "quickstart", "--synthetic-forms", "16", "--max-words", "40"]


def epochs(stopper: EarlyStopping, model: torch.nn.Module, count: int) -> list[bool]:
    """Run `count` epochs; each sets the weight to its epoch number. Returns should_training_stop per epoch."""
    stops = []
    args = TrainingArguments(output_dir="unused", report_to=[])
    for epoch in range(1, count + 1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        control = TrainerControl()
        stopper.on_epoch_end(args, TrainerState(epoch=float(epoch)), control, model=model)
        stops.append(control.should_training_stop)
    return stops


def test_training_stops_after_patience_epochs_without_gain_and_ends_with_the_best_weights(
    tmp_path: Path,
) -> None:
    scores = iter([0.10, 0.30, 0.20, 0.25, 0.9])
    model = torch.nn.Linear(2, 2, bias=False)
    stopper = EarlyStopping(lambda m: next(scores), patience=2, directory=tmp_path, forms=4)
    assert epochs(stopper, model, 4) == [False, False, False, True]
    stopper.restore_best(model)
    assert float(model.weight[0, 0].detach()) == 2.0, "the best epoch's weights, not the last epoch's"
    record = stopper.record()
    assert record["best_epoch"] == 2.0 and record["epochs_reached"] == 4.0 and record["stopped_early"]
    assert record["best_validation_f1"] == 0.30 and record["validation_forms"] == 4
    # A resumed run reads the history back and stops at once: it had already stopped.
    again = EarlyStopping(lambda m: 0.0, patience=2, directory=tmp_path, forms=4)
    control = TrainerControl()
    again.on_train_begin(TrainingArguments(output_dir="unused", report_to=[]), TrainerState(), control)
    assert control.should_training_stop and again.history == stopper.history


def test_a_model_that_keeps_improving_trains_every_epoch_and_keeps_its_last_weights(tmp_path: Path) -> None:
    scores = iter([0.1, 0.2, 0.3])
    model = torch.nn.Linear(2, 2, bias=False)
    stopper = EarlyStopping(lambda m: next(scores), patience=1, directory=tmp_path, forms=2)
    assert epochs(stopper, model, 3) == [False, False, False]
    stopper.restore_best(model)
    assert float(model.weight[0, 0].detach()) == 3.0 and not stopper.record()["stopped_early"]


def test_validation_forms_are_training_forms_no_model_trains_on(tmp_path: Path) -> None:
    from distill.data.run_data import load_run_data

    values = {**PRESETS["quickstart"], "synthetic_forms": 16, "max_words": 40}
    plain = load_run_data(dataclasses.replace(TrainConfig(), **values))
    held = load_run_data(dataclasses.replace(TrainConfig(), **values, validation_forms=3))
    assert len(held["validation"]) == 3 and len(held["train"]) == len(plain["train"]) - 3
    assert not set(held["validation"]["id"]) & set(held["train"]["id"])
    assert set(held["validation"]["id"]) <= set(plain["train"]["id"]), "drawn from the training split"
    assert held["test"]["id"] == plain["test"]["id"], "the scored split stays the test split"
    with pytest.raises(DistillError, match="--patience needs --validation-forms"):
        dataclasses.replace(TrainConfig(), patience=2).validate()


def test_a_run_with_early_stopping_records_the_epochs_each_model_reached(tmp_path: Path) -> None:
    args = [*SMALL, "--validation-forms", "3", "--patience", "1", "--epochs", "4", "--output-dir", "run"]
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for name in ("teacher", "student", "student-baseline"):
        record = metrics["models"][name]["early_stopping"]
        assert 1 <= record["epochs_reached"] <= 4 and len(record["history"]) == round(
            record["epochs_reached"]
        )
        assert record["best_validation_f1"] == max(f1 for _, f1 in record["history"])
    assert not (tmp_path / "run" / "checkpoints").exists(), "the best weights went with the checkpoints"
