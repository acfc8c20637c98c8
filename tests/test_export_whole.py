"""Issue 30, defects 2 and 3: an export is one swap of onnx/, and reduced precision keeps its reference.

On a copy of the quickstart run (tiny trained teacher and student), exported once with fp32 and
fp32-optimized as "the previous export"; the later exports ask for fewer variants, so a manifest
left from before names files that a partial swap would have removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from export import onnx as export_cli
from export import pipeline, validate
from tests.conftest import REPO, run_cli

FAST = ["--latency-repeats", "1", "--parity-windows", "8", "--calibration-windows", "8", "--gate-forms", "4"]


@pytest.fixture(scope="module")
def previous(quickstart_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart run with a finished export of both models (fp32 and fp32-optimized)."""
    run = tmp_path_factory.mktemp("previous") / "run"
    shutil.copytree(quickstart_run, run, ignore=shutil.ignore_patterns("onnx"))
    variants = ["--variants", "fp32,fp32-optimized", "--models", "teacher,student"]
    run_cli(["-m", "export.onnx", "--run-dir", str(run), *variants, "--report-dir", str(run), *FAST], cwd=run)
    return run


def fresh_copy(previous: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(previous, copy)
    return copy


def snapshot(run: Path) -> dict[str, tuple[int, int]]:
    """Every file under onnx/ with its size and mtime: a rewritten or removed file shows."""
    return {
        str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted((run / "onnx").rglob("*"))
        if p.is_file()
    }


def named_files(run: Path) -> list[Path]:
    manifest = json.loads((run / "onnx" / "manifest.json").read_text())
    return [run / v["path"] for m in manifest["models"].values() for v in m["variants"].values()]


def assert_previous_export_intact(run: Path, before: dict[str, tuple[int, int]]) -> None:
    files = named_files(run)
    assert len(files) == 4 and all(f.is_file() for f in files), [str(f) for f in files if not f.is_file()]
    assert snapshot(run) == before, "the previous export was changed"
    assert not [p.name for p in run.iterdir() if p.name.startswith(".onnx")], "staging left behind"


def test_ctrl_c_during_the_second_models_export_leaves_the_previous_export(
    previous: Path, tmp_path: Path
) -> None:
    """The teacher's onnx/teacher/ used to be swapped in before the student started: after Ctrl-C the
    manifest named onnx/teacher/fp32-optimized/model.onnx, gone."""
    run = fresh_copy(previous, tmp_path)
    before = snapshot(run)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args = [
        "--run-dir",
        str(run),
        "--models",
        "teacher,student",
        "--variants",
        "fp32",
        "--report-dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "export.onnx", *args, *FAST],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:  # the hook: the teacher is done and the student's export has begun
        seen.append(line)
        if "exporting student" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=300)[1]
    assert any("exporting student" in line for line in seen), "".join(seen)[-2000:]
    assert proc.returncode != 0 and "KeyboardInterrupt" in rest, rest[-2000:]
    assert_previous_export_intact(run, before)


def test_a_parity_failure_in_the_second_model_leaves_the_previous_export(
    previous: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = fresh_copy(previous, tmp_path)
    before = snapshot(run)
    real = validate.tolerance_for
    # The student only is held to a bound no float graph meets: its real parity check fails.
    monkeypatch.setattr(validate, "tolerance_for", lambda name: 1e-12 if name == "student" else real(name))
    args = [
        "--run-dir",
        str(run),
        "--models",
        "teacher,student",
        "--variants",
        "fp32",
        "--report-dir",
        str(tmp_path),
    ]
    assert export_cli.main([*args, *FAST]) == 2
    err = capsys.readouterr().err
    assert "student fp32: max |logit difference|" in err and "beyond the tolerance 1e-12" in err
    assert_previous_export_intact(run, before)


def injected_timings(ms: dict[str, float]) -> Any:
    """export.pipeline.interleaved with the test's figures: every shape, no spread, an idle machine."""

    def interleaved(calls: dict[str, Any], **_: Any) -> tuple[dict[str, dict[str, float]], float]:
        return {n: {"median_ms": ms[n], "min_ms": ms[n], "spread": 0.0, "rounds": 7} for n in calls}, 0.0

    return interleaved


def test_int8_alone_keeps_fp32_and_int8_slower_than_it_is_not_recommended(
    previous: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--variants int8 built fp32 in scratch and deleted it: int8 was then the only candidate, chosen
    however slow, and no fp32 file was left to fall back on."""
    run = fresh_copy(previous, tmp_path)
    monkeypatch.setattr(pipeline, "interleaved", injected_timings({"fp32": 10.0, "int8": 12.0}))
    args = ["--run-dir", str(run), "--models", "student", "--variants", "int8", "--int8-budget", "100"]
    assert export_cli.main([*args, "--report-dir", str(tmp_path), *FAST]) == 0
    entry = json.loads((run / "onnx" / "manifest.json").read_text())["models"]["student"]
    assert list(entry["variants"]) == ["fp32", "int8"] and entry["kept_as_reference"] == "fp32"
    assert (run / "onnx" / "student" / "fp32" / "model.onnx").is_file()
    notes = {c["variant"]: c.get("note") for c in entry["recommended_cpu_choice"]["candidates"]}
    assert notes["int8"].startswith("reduced precision not faster than fp32"), notes
    assert entry["recommended_cpu"] == "fp32"
    assert (run / entry["variants"]["fp32"]["path"]).is_file()
    # The teacher, not exported this time, stands as the previous export left it.
    assert (run / "onnx" / "teacher" / "fp32-optimized" / "model.onnx").is_file()
