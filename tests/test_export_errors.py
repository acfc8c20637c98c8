"""Bad input to `python -m export.onnx`: a plain message that names what is wrong, exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distill.builders import tiny_student
from distill.config import TrainConfig
from distill.schema import FUNSD_LABELS
from export import onnx as export_cli


def fails(args: list[str], capsys: pytest.CaptureFixture) -> str:
    code = export_cli.main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    (message,) = [line for line in err.splitlines() if line.startswith("error: ")]
    return message


@pytest.fixture()
def empty_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    TrainConfig(
        data="synthetic",
        synthetic_forms=8,
        max_words=40,
        teacher="tiny",
        student="tiny",
        max_length=64,
        stride=16,
    ).write(run / "config.toml")
    return run


def test_no_run_directory_says_to_train_first(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    err = fails(["--run-dir", str(tmp_path / "nowhere"), "--report-dir", str(tmp_path)], capsys)
    assert "python -m distill.train" in err and "nowhere" in err


def test_no_runs_latest_says_to_train_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    err = fails([], capsys)
    assert "runs/latest" in err and "python -m distill.train" in err


def test_unknown_variant_lists_the_valid_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)  # option errors come before looking for a run
    err = fails(["--variants", "fp32,int4", "--report-dir", str(tmp_path)], capsys)
    assert "'int4'" in err and "fp32, fp32-optimized, int8, fp16" in err


def test_unknown_model_and_attempt_list_the_valid_ones(
    empty_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (empty_run / "student").mkdir()
    (empty_run / "student" / "config.json").write_text("{}")
    err = fails(["--run-dir", str(empty_run), "--models", "tutor", "--report-dir", str(empty_run)], capsys)
    assert "no tutor directory in this run (it has: student)" in err
    monkeypatch.chdir(empty_run)
    assert "dynamic-per-channel" in fails(["--int8-attempts", "magic"], capsys)


def test_run_without_models_says_to_train_first(empty_run: Path, capsys: pytest.CaptureFixture) -> None:
    err = fails(["--run-dir", str(empty_run), "--report-dir", str(empty_run)], capsys)
    assert "python -m distill.train" in err and str(empty_run) in err


def test_missing_model_config_names_the_directory(empty_run: Path, capsys: pytest.CaptureFixture) -> None:
    (empty_run / "student").mkdir()
    err = fails(["--run-dir", str(empty_run), "--report-dir", str(empty_run)], capsys)
    assert str(empty_run / "student") in err and "config.json" in err


def test_corrupt_weights_name_the_file(empty_run: Path, capsys: pytest.CaptureFixture) -> None:
    tiny_student(["name", "date", "total", "signature"] * 20, FUNSD_LABELS).save(empty_run / "student")
    weights = empty_run / "student" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    err = fails(["--run-dir", str(empty_run), "--report-dir", str(empty_run)], capsys)
    assert str(weights) in err
    assert not (empty_run / "onnx" / "student").exists()


def test_a_model_the_run_lacks_is_named(empty_run: Path, capsys: pytest.CaptureFixture) -> None:
    tiny_student(["name", "date"] * 20, FUNSD_LABELS).save(empty_run / "student")
    err = fails(["--run-dir", str(empty_run), "--models", "teacher", "--report-dir", str(empty_run)], capsys)
    assert "no teacher directory" in err and "student" in err
    shutil.rmtree(empty_run / "student")
