"""The FUNSD study command, end to end on synthetic forms and tiny models (two seeds, two jobs)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.conftest import run_cli


def tiny_study(*options: str) -> list[str]:
    return [
        "-m", "distill.funsd_report", "--data", "synthetic", "--student", "tiny", "--jobs", "2",
        "--teacher-epochs", "3", "--student-epochs", "2", "--teacher-lr", "2e-3", "--student-lr", "2e-3",
        "--box-lr", "1e-2", "--max-length", "128", "--stride", "32", "--output-dir", "study",
        "--report-dir", "reports", *options, "--", "--synthetic-forms", "16", "--max-words", "60",
    ]  # fmt: skip


TINY_STUDY = tiny_study("--teacher", "layout-student", "--seeds", "0", "1")


def test_study_trains_five_runs_per_seed_and_reports_mean_and_spread(tmp_path: Path) -> None:
    run_cli(TINY_STUDY, cwd=tmp_path)
    for seed in (0, 1):
        runs = tmp_path / "study" / f"seed{seed}"
        assert sorted(p.name for p in runs.iterdir()) == ["layout", "layout-kd", "teacher", "text", "text-kd"]
        teacher = json.loads((runs / "teacher" / "metrics.json").read_text())["models"]["student"]
        assert teacher["layout"] is True, "the default teacher is the layout-aware architecture"
        kd = json.loads((runs / "layout-kd" / "metrics.json").read_text())
        assert kd["distillation"]["teacher"] == f"study/seed{seed}/teacher/student"
        assert kd["models"]["student"]["distilled"] is True and kd["models"]["student"]["layout"] is True
        plain = json.loads((runs / "text" / "metrics.json").read_text())["models"]
        assert set(plain) == {"student"} and plain["student"]["distilled"] is False
        assert tomllib.loads((runs / "text" / "config.toml").read_text())["seed"] == seed
    report = (tmp_path / "reports" / "funsd.md").read_text()
    for label in ("| teacher |", "| student, text only |", "| student, layout-aware + vanilla KD |"):
        assert label in report
    assert "Written by `python -m distill.funsd_report --data synthetic" in report
    assert "Wall time:" in report and "cores, " in report
    assert "layout-aware over text-only student:" in report and " ± " in report
    assert "the teacher beats the plain text-only student by ≥ 8 F1 points" in report
    assert "raises the text-only student by ≥ 2.0 F1 points" in report
    assert "not exported" in report, "no int8 column is invented before export"
    assert "int8 of the best student" in report and "(not exported yet)" in report

    # A second call reuses every finished run and only rewrites the report.
    before = (tmp_path / "study" / "seed0" / "text" / "metrics.json").stat().st_mtime_ns
    run_cli(TINY_STUDY, cwd=tmp_path)
    assert (tmp_path / "study" / "seed0" / "text" / "metrics.json").stat().st_mtime_ns == before


def test_default_teacher_is_the_ensemble_of_each_seeds_plain_students(tmp_path: Path) -> None:
    run_cli(tiny_study("--seeds", "0"), cwd=tmp_path)
    runs = tmp_path / "study" / "seed0"
    assert sorted(p.name for p in runs.iterdir()) == ["layout", "layout-kd", "text", "text-kd"]
    teacher = json.loads((runs / "text-kd" / "metrics.json").read_text())["models"]["teacher"]
    assert teacher["members"] == ["study/seed0/text/student", "study/seed0/layout/student"]
    report = (tmp_path / "reports" / "funsd.md").read_text()
    assert "an ensemble of the seed's plain text-only and layout-aware students" in report


def test_best_method_rows_are_named_after_their_options_and_share_the_teacher(tmp_path: Path) -> None:
    study = tiny_study(
        "--teacher",
        "tiny",
        "--teacher-as-is",
        "--seeds",
        "0",
        "--best-kd",
        "--feature-weight 1 --transfer-copies 1",
    )
    run_cli(study, cwd=tmp_path)
    runs = tmp_path / "study" / "seed0"
    best = "kd-feature-weight1-transfer-copies1"
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        ["teacher", "text", "text-kd", f"text-{best}", "layout", f"layout-{best}"]
    )
    teacher = json.loads((runs / "teacher" / "teacher" / "config.json").read_text())
    assert teacher["model_type"] == "distilbert", "--teacher-as-is reaches the teacher run"
    metrics = json.loads((runs / f"text-{best}" / "metrics.json").read_text())
    assert metrics["distillation"]["feature_weight"] == 1.0 and metrics["transfer_set"]["copies"] == 1
    assert metrics["distillation"]["teacher"] == "study/seed0/teacher/teacher"
    vanilla = json.loads((runs / "text-kd" / "metrics.json").read_text())["distillation"]
    assert vanilla["feature_weight"] == 0.0 and vanilla["transfer_copies"] == 0
    report = (tmp_path / "reports" / "funsd.md").read_text()
    assert "| student, text only + best KD |" in report and "| student, layout-aware + best KD |" in report
    assert "best KD = vanilla plus `--feature-weight 1 --transfer-copies 1`" in report
    assert "KD overhead" in report and " s (" in report


def test_one_teacher_serves_every_seed_and_a_study_reports_in_parts(tmp_path: Path) -> None:
    study = tiny_study("--teacher", "tiny", "--teacher-as-is", "--teacher-seed", "0", "--seeds", "0", "1")
    proc = run_cli(study, cwd=tmp_path)
    assert not (tmp_path / "study" / "seed1" / "teacher").exists(), "--teacher-seed trains one teacher"
    for seed in (0, 1):
        kd = json.loads((tmp_path / "study" / f"seed{seed}" / "text-kd" / "metrics.json").read_text())
        assert kd["distillation"]["teacher"] == "study/seed0/teacher/teacher"
    # Text-only rows first, for every seed: a study stopped part-way has its headline comparison.
    starts = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("start")]
    assert starts.index("layout") > max(i for i, kind in enumerate(starts) if kind == "text-kd")
    # Within a group, one seed's rows before the next seed's: a stopped study has whole pairs.
    seeds = [int(line.split()[2]) for line in proc.stdout.splitlines() if line.startswith("start")]
    layout_seeds = [seed for seed, kind in zip(seeds, starts, strict=True) if kind.startswith("layout")]
    assert layout_seeds == [0, 0, 1, 1]
    report = (tmp_path / "reports" / "funsd.md").read_text()
    assert "(one run, seed 0, shared by the students of every seed)" in report
    assert "| teacher | 0 (shared) |" in report and "| student, text only | 0, 1 |" in report
    teacher_row = next(line for line in report.splitlines() if line.startswith("| teacher |"))
    assert "±" not in teacher_row, "one teacher run has no spread to show"
    assert "paid once for the whole study" in report
    assert "(no `--best-kd` was given: vanilla KD is the best method this study reports)" in report

    # A run not finished: the full report refuses, naming it; --partial reports what there is.
    (tmp_path / "study" / "seed1" / "layout-kd" / "metrics.json").unlink()
    split = study.index("--")

    def report_only(*options: str) -> list[str]:
        return [*study[:split], "--report-only", *options, *study[split:]]

    refused = run_cli(report_only(), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "seed1/layout-kd/metrics.json" in refused.stderr
    run_cli(report_only("--partial"), cwd=tmp_path)
    report = (tmp_path / "reports" / "funsd.md").read_text()
    assert "| student, layout-aware + vanilla KD | 0 |" in report
    assert "student, layout-aware + vanilla KD over plain: " in report and "(over 1 of 2 seeds)" in report
    # The best student is ranked on the seed every row has (0), not on each row's own seeds.
    labels = {"text": "student, text only", "text-kd": "student, text only + vanilla KD",
              "layout": "student, layout-aware", "layout-kd": "student, layout-aware + vanilla KD"}  # fmt: skip
    seed0 = {
        kind: json.loads((tmp_path / "study" / "seed0" / kind / "metrics.json").read_text())["models"][
            "student"
        ]["f1"]
        for kind in labels
    }
    assert f"int8 of the best student ({labels[max(seed0, key=seed0.__getitem__)]})" in report


def _record(seed: int, f1: float) -> dict:
    """One finished run as `collect` reads it, with only what the report needs."""
    return {
        "seed": seed, "f1": f1, "precision": f1, "recall": f1, "word_accuracy": f1, "params": 1_000_000,
        "train_seconds": 100.0, "teacher_cache_seconds": 10.0, "wall_seconds": 100.0,
        "run": f"seed{seed}/{f1}", "per_type": {"QUESTION": {"f1": f1}},
    }  # fmt: skip


def test_a_partial_study_ranks_students_on_shared_seeds_and_pairs_the_gap_by_seed() -> None:
    from distill.funsd_report import LAYOUT, TEACHER_ROW, TEXT, best_student, build_parser, render, study_rows

    args = build_parser().parse_args(
        ["--teacher", "t", "--teacher-as-is", "--teacher-seed", "0", "--student", "s", "--partial"]
    )
    args.train_options = []
    rows = {row: [] for row in study_rows(args)}
    text_kd, layout_kd = (row for row in rows if row.distilled)
    rows[TEACHER_ROW] = [_record(s, 0.60) for s in (0, 1, 2)]  # one shared teacher, a record per seed
    rows[TEXT] = [_record(0, 0.50), _record(1, 0.52)]  # seed 2 not finished: behind the teacher
    rows[text_kd] = [_record(0, 0.55)]
    rows[LAYOUT] = [_record(0, 0.53), _record(1, 0.60), _record(2, 0.60)]  # best on its own three seeds
    rows[layout_kd] = [_record(0, 0.56)]  # best on seed 0, the one every student row has
    assert best_student(rows) is layout_kd
    report = render(rows, args, "python -m distill.funsd_report ...")
    assert f"int8 of the best student ({layout_kd.label})" in report
    # Text KD has seed 0 only: +5 there, over a gap of 10 on that same seed (not the 9-point mean).
    assert "the best text-only method (student, text only + vanilla KD) recovers: 50 %" in report
