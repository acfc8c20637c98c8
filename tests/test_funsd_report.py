"""The FUNSD study command, end to end on synthetic forms and tiny models (two seeds, two jobs)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.conftest import run_cli


def tiny_study(*options: str) -> list[str]:
    return [
        "-m", "distill.studies.funsd", "--data", "synthetic", "--student", "tiny", "--jobs", "2",
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
    assert "Written by `python -m distill.studies.funsd --data synthetic" in report
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
    # One job at a time: a seed's layout-kd run then always starts after its text-kd run cached the targets.
    study = tiny_study(
        "--teacher", "tiny", "--teacher-as-is", "--teacher-seed", "0", "--seeds", "0", "1", "--jobs", "1"
    )  # fmt: skip
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
    # One teacher, the same forms: a seed's first distilled run computes its targets, the next reads
    # them (synthetic forms differ by seed, so each seed computes its own).
    study_files = {p.name for p in (tmp_path / "study" / "teacher-cache").glob("*.npz")}
    assert len(study_files) == 2
    for seed in (0, 1):
        for kind, source in (("text-kd", "computed"), ("layout-kd", "cache")):
            run = tmp_path / "study" / f"seed{seed}" / kind
            assert json.loads((run / "metrics.json").read_text())["teacher_targets"] == source, run
            assert {p.name for p in (run / "teacher-cache").glob("*.npz")} <= study_files
    assert "runs read the teacher's targets from the study's cache" in report
    written = json.loads((tmp_path / "reports" / "funsd.json").read_text())["rows"]
    assert {r["run"] for r in written["text-kd"]} == {"seed0/text-kd", "seed1/text-kd"}, "no machine's paths"
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
    from distill.studies.funsd import build_parser
    from distill.studies.funsd_plan import LAYOUT, TEACHER_ROW, TEXT, study_rows
    from distill.studies.funsd_tables import render
    from distill.studies.funsd_targets import best_student

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
    report = render(rows, args, "python -m distill.studies.funsd ...")
    assert f"int8 of the best student ({layout_kd.label})" in report
    # Text KD has seed 0 only: +5 there, over a gap of 10 on that same seed (not the 9-point mean).
    assert "the best text-only method (student, text only + vanilla KD) recovers: 50 %" in report


def test_teacher_initialised_rows_export_and_are_timed_beside_the_teacher(tmp_path: Path) -> None:
    study = [*tiny_study("--teacher", "tiny", "--teacher-seed", "0", "--seeds", "0", "--init-layers", "1",
                         "--teacher-epochs", "1", "--student-epochs", "1",
                         "--l2l-kd", "--hidden-weight 1 --attention-weight 1",
                         "--teacher-options", "--teacher-loss balanced")]  # fmt: skip
    run_cli(study, cwd=tmp_path)
    runs = tmp_path / "study" / "seed0"
    assert {"teacher1", "teacher1-kd", "teacher1-l2l"} <= {p.name for p in runs.iterdir()}
    teacher = tomllib.loads((runs / "teacher" / "config.toml").read_text())
    assert teacher["teacher_loss"] == "balanced", "--teacher-options reach the teacher run"
    assert tomllib.loads((runs / "text" / "config.toml").read_text())["teacher_loss"] == "ce", "and only it"
    plain = json.loads((runs / "teacher1" / "metrics.json").read_text())
    assert (
        plain["models"]["student"]["teacher_layers"] == [0]
        and plain["models"]["student"]["distilled"] is False
    )
    l2l = json.loads((runs / "teacher1-l2l" / "metrics.json").read_text())["models"]["student"]
    assert {m["feature"] for m in l2l["intermediate_matches"]} == {"hidden", "attention"}

    split = study.index("--")
    listed = run_cli([*study[:split], "--list-runs", *study[split:]], cwd=tmp_path).stdout.split("\n")
    assert "study/seed0/teacher teacher" in listed and "study/seed0/teacher1-kd student" in listed
    fast = [
        "--latency-repeats",
        "1",
        "--parity-windows",
        "8",
        "--calibration-windows",
        "8",
        "--variants",
        "fp32,int8",
    ]
    for run, model in (("teacher", "teacher"), ("teacher1-kd", "student")):
        run_cli(["-m", "export.onnx", "--run-dir", f"study/seed0/{run}", "--models", model, "--report-dir",
                 f"study/seed0/{run}", *fast], cwd=tmp_path)  # fmt: skip
    run_cli([*study[:split], "--speed-only", "--speed-rounds", "2", *study[split:]], cwd=tmp_path)
    speed = json.loads((tmp_path / "study" / "speed.json").read_text())
    assert speed["rounds"] == 2 and set(speed["rows"]) >= {"teacher", "text", "teacher1", "teacher1-l2l"}
    kd = speed["rows"]["teacher1-kd"]
    assert kd["pytorch"]["forms_per_s"] > 0 and kd["recommended"]["variant"] in ("fp32", "int8")
    assert len(kd["pytorch"]["seconds_per_pass"]) == 2 and "recommended" not in speed["rows"]["text"]
    report = (tmp_path / "reports" / "funsd.md").read_text()
    assert "| student, teacher:1 (1 of the teacher's layers) + layer-to-layer KD |" in report
    assert "![entity F1 against forms/s, both runtimes](funsd-frontier.png)" in report
    assert (tmp_path / "reports" / "funsd-frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert "the teacher reaches ≥ 63.0 F1" in report and "× its forms/s in PyTorch fp32" in report
    assert "(1 of 4 rows exported)" in report, "every distilled row's recommended variant is counted"
    label = "| student, teacher:1 (1 of the teacher's layers) + vanilla KD |"
    cost_row = [line for line in report.splitlines() if line.startswith(label)][-1]  # the cost table's
    assert cost_row.count("×") == 2 and ("| int8 |" in cost_row or "| fp32 |" in cost_row), cost_row


def test_the_cost_targets_are_judged_from_f1_speed_and_the_recommended_variant() -> None:
    """Fabricated figures: each target met or not exactly as the numbers say."""
    from distill.studies.funsd import build_parser
    from distill.studies.funsd_plan import TEACHER_ROW, study_rows
    from distill.studies.funsd_targets import issue_targets
    from distill.studies.plot import Point, frontier

    args = build_parser().parse_args(["--teacher", "t", "--student", "s", "--init-layers", "6"])
    rows = {row: [] for row in study_rows(args)}
    by_kind = {row.kind: row for row in rows}
    header = {"HEADER": {"f1": 0.31}}
    rows[TEACHER_ROW] = [{**_record(s, 0.64), "per_type": header, "params": 110e6} for s in (0, 1, 2)]

    def student(kind: str, f1: float, params: float, delta: float | None) -> None:
        recommended = {"variant": "int8", "f1": f1, "delta_f1_points": delta} if delta is not None else None
        rows[by_kind[kind]] = [
            {**_record(s, f1), "params": params, "recommended": recommended} for s in (0, 1, 2)
        ]

    student("teacher6-l2l", 0.625, 60e6, -0.5)  # 1.5 below the teacher: the best student
    student("text-kd", 0.605, 22e6, -0.9)  # 3.5 below, 22 M: the smallest class
    speed = {"rows": {"teacher": {"pytorch": {"forms_per_s": 1.0}}, "teacher6-l2l": {"pytorch": {"forms_per_s": 2.1}},
                      "text-kd": {"pytorch": {"forms_per_s": 5.9}}}}  # fmt: skip
    lines = issue_targets(rows, speed)
    assert lines[0].startswith("- met: the teacher reaches ≥ 63.0 F1 (64.00) with HEADER F1 ≥ 30 (31.00)")
    best = [line for line in lines if "the best student (" in line]
    assert best[0].startswith("- met:") and "(2.10×)" in best[0] and best[1].startswith("- not measured yet")
    small = [line for line in lines if "≤ 25 M parameters" in line]
    assert small[0].startswith("- **not met**") and "(5.90×)" in small[0], "5.9x is short of 6x"
    assert lines[-1].startswith("- not measured yet") and "(2 of 4 rows exported)" in lines[-1]
    for kind in ("text-kd", "layout-kd", "teacher6-kd"):
        student(kind, 0.60, 22e6, -1.5 if kind == "text-kd" else -0.2)
    lines = issue_targets(rows, speed)
    assert (
        lines[-1].startswith("- **not met**")
        and "(worst: student, text only + vanilla KD, -1.50)" in lines[-1]
    )
    points = [Point("a", "r", 1.0, 60, 0), Point("b", "r", 2.0, 55, 0), Point("c", "r", 1.5, 50, 0)]
    assert [p.label for p in frontier(points)] == ["a", "b"], "c is beaten on both axes by b"


def test_a_reused_teacher_is_reported_with_the_forms_and_budget_of_the_run_that_trained_it(
    tmp_path: Path,
) -> None:
    from distill.studies.funsd import build_parser
    from distill.studies.funsd_plan import TEACHER_ROW
    from distill.studies.funsd_tables import as_shown, reused_note, reused_teacher, shown_paths

    source = tmp_path / "tuning" / "teacher-run"
    (source / "teacher").mkdir(parents=True)
    (source / "config.toml").write_text(
        'holdout_forms = 30\nteacher_epochs = 20.0\nepochs = 6.0\nteacher_lr = 0.0002\nteacher_loss = "ce"\nseed = 3\n'
    )
    (source / "metrics.json").write_text(
        json.dumps({"train_forms": 119, "models": {"teacher": {"train_seconds": 9675.3}}})
    )
    study_teacher = tmp_path / "study" / "seed0" / "teacher"
    study_teacher.mkdir(parents=True)
    (study_teacher / "config.toml").write_text(f'teacher_dir = "{source / "teacher"}"\n')
    found = reused_teacher(study_teacher)
    assert found is not None
    assert (found["run"], found["train_forms"], found["holdout_forms"]) == ("teacher-run", 119, 30)
    assert (found["epochs"], found["seed"], found["train_seconds"]) == (20.0, 3, 9675.3)
    note = reused_note({TEACHER_ROW: [{"reused_from": found}]})
    assert "reused (`--teacher-dir`) from the run `teacher-run`" in note
    assert "119 training forms (30 held out for tuning) for 20 epochs" in note and "in 9675 s" in note

    # A teacher the study trained itself has no such note.
    (study_teacher / "config.toml").write_text('teacher_dir = ""\n')
    assert reused_teacher(study_teacher) is None and reused_note({TEACHER_ROW: [{}]}) == ""

    # The machine's model directories are printed as the command's placeholders.
    args = build_parser().parse_args(["--student", "/opt/models/minilm", "--teacher", "/opt/models/mpnet"])
    assert as_shown(args.student, args) == "$M" and as_shown(args.teacher, args) == "$T"
    assert as_shown("tiny", build_parser().parse_args(["--student", "tiny"])) == "tiny"
    # ... and so are they in the JSON, wherever they appear, and paths under them; others stay.
    record = {
        "base": "/opt/models/minilm",
        "speed": [{"model": "/opt/models/mpnet/x"}],
        "other": "/opt/models/m",
    }
    assert shown_paths(record, args) == {"base": "$M", "speed": [{"model": "$T/x"}], "other": "/opt/models/m"}
