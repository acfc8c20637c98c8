"""Issue 28: a reused teacher labels the forms in its export's recommended (gated) CPU variant."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from distill.data.run_data import load_run_data
from distill.hardware import isa_name
from distill.models import load_bundle
from distill.run_dir import read_config
from distill.training.teacher_targets import cache_key, cached_targets, exported_teacher
from tests.conftest import run_cli

FAST = ["--latency-repeats", "2", "--parity-windows", "16", "--calibration-windows", "8"]


@pytest.fixture(scope="module")
def exported_teacher_run(quickstart_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("exported-teacher")
    run = home / "run"
    run.mkdir()
    shutil.copy(quickstart_run / "config.toml", run / "config.toml")
    shutil.copytree(quickstart_run / "teacher", run / "teacher")
    args = [
        "--run-dir",
        str(run),
        "--models",
        "teacher",
        "--variants",
        "fp32,openvino",
        "--report-dir",
        str(home),
    ]
    run_cli(["-m", "export.onnx", *args, *FAST], cwd=home)
    return run


def test_the_exported_teachers_labels_match_its_pytorch_labels(
    exported_teacher_run: Path, tmp_path: Path
) -> None:
    found = exported_teacher([str(exported_teacher_run / "teacher")], with_vectors=False)
    assert found is not None and found.variant in ("fp32", "openvino") and found.isa == isa_name()
    assert exported_teacher([str(exported_teacher_run / "teacher")], with_vectors=True) is None, (
        "vectors: PyTorch"
    )
    config = read_config(exported_teacher_run)
    forms = load_run_data(config)["train"]
    teacher = load_bundle(exported_teacher_run / "teacher")
    torch_targets, _ = cached_targets(tmp_path / "a", [teacher], forms, config, False)
    exported, cached = cached_targets(tmp_path / "b", [teacher], forms, config, False, exported=found)
    assert not cached
    same = sum(
        int((a.argmax(-1) == b.argmax(-1)).sum()) for a, b in zip(torch_targets, exported, strict=True)
    )
    words = sum(len(a) for a in torch_targets)
    assert same >= 0.99 * words, f"{same} of {words} words agree"
    assert max(float(np.abs(a - b).max()) for a, b in zip(torch_targets, exported, strict=True)) < 1e-2
    # The cache keys name the variant and the CPU: a PyTorch entry never serves an exported request.
    key = cache_key([teacher], forms, config.max_length, config.stride, False, found)
    assert key != cache_key([teacher], forms, config.max_length, config.stride, False)


def test_a_student_run_says_which_variant_labelled_its_forms(
    exported_teacher_run: Path, tmp_path: Path
) -> None:
    teacher = str(exported_teacher_run / "teacher")
    base = [
        "--preset",
        "quickstart",
        "--stage",
        "student",
        "--teacher-dir",
        teacher,
        "--epochs",
        "1",
        "--no-baseline",
    ]
    run_cli(["-m", "distill.train", *base, "--output-dir", "e"], cwd=tmp_path)
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["teacher_targets_from"].endswith(f" on {isa_name()}")
    run_cli(
        ["-m", "distill.train", *base, "--teacher-targets-from", "pytorch", "--output-dir", "p"], cwd=tmp_path
    )
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["teacher_targets_from"] == "pytorch"
