"""Issue 28: TinyBERT's two-stage schedule, the layers first and then the predictions."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.test_students import SMALL


def test_two_stages_train_the_layers_then_the_predictions_and_leave_no_scaffold(tmp_path: Path) -> None:
    args = [*SMALL, "--student", "teacher:1", "--hidden-weight", "1", "--transfer-copies", "1",
            "--transfer-schedule", "two-stage", "--prediction-epochs", "1", "--no-baseline", "--output-dir", "run"]  # fmt: skip
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["models"]["student"]
    schedule = record["schedule"]
    assert schedule["schedule"] == "two-stage" and schedule["layer_steps"] > 0 and record["train_steps"] > 0
    assert schedule["prediction_epochs"] == 1.0
    assert [m["layer_S"] for m in record["intermediate_matches"]] == [0, 1], "the layer terms it trained"
    assert not (tmp_path / "run" / "checkpoints").exists(), "stage one's weights went with the checkpoints"


def test_two_stages_without_a_layer_term_are_refused_before_anything_runs(tmp_path: Path) -> None:
    proc = run_cli(["-m", "distill.train", *SMALL, "--transfer-schedule", "two-stage", "--output-dir", "r"],
                   cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 2 and "give it a layer term" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "r").exists()
