"""OCR words against gold words (distill/predict/ocr_align.py), and `python -m distill.studies.ocr` on rendered forms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from distill.predict.ocr_align import match_words, project_tags, word_agreement
from distill.studies.ocr import main
from tests.rendered_pages import annotated_form


def test_merged_split_and_missed_words_carry_the_right_tags() -> None:
    gold = [[0, 0, 10, 10], [12, 0, 22, 10], [30, 0, 50, 10], [60, 0, 70, 10], [80, 0, 90, 10]]
    ocr = [
        [0, 0, 22, 10],  # gold 0 and 1 read as one word
        [30, 0, 38, 10],  # gold 2 in two pieces: the larger one covers more of it
        [38, 0, 50, 10],
        [60, 1, 70, 9],  # gold 3
        [200, 0, 210, 10],  # noise; gold 4 is missed
    ]
    matches = match_words(gold, ocr)
    assert matches == [0, 0, 2, 3, None]
    tags = project_tags(matches, ["B-QUESTION", "B-ANSWER", "I-ANSWER", "B-ANSWER", "B-HEADER"])
    # The merged word stays one QUESTION over both gold words; the missed word is O.
    assert tags == ["B-QUESTION", "I-QUESTION", "B-ANSWER", "B-ANSWER", "O"]
    # An OCR word that continues (I-) the same type continues the gold span too.
    assert project_tags([0, 1], ["B-ANSWER", "I-ANSWER"]) == ["B-ANSWER", "I-ANSWER"]
    assert project_tags([0, 1], ["B-ANSWER", "B-ANSWER"]) == ["B-ANSWER", "B-ANSWER"]
    agreement = word_agreement(["a", "b", "Date:", "d", "e"], ["a b", "Da", "te:", "d", "x"], matches)
    assert (agreement.gold, agreement.matched, agreement.same_text, agreement.ocr) == (5, 4, 1, 5)
    assert agreement.unmatched_ocr == 2  # the first piece of gold 2, and the noise


def test_a_gold_word_half_covered_by_nothing_is_missed() -> None:
    assert match_words([[0, 0, 10, 10]], [[8, 0, 20, 10]]) == [None]  # 2 of 10 covered
    assert match_words([[0, 0, 10, 10]], []) == [None]


@pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Tesseract not installed (apt-get install tesseract-ocr)"
)
def test_the_report_on_clean_rendered_forms(quickstart_run: Path, tmp_path: Path) -> None:
    data = tmp_path / "funsd"
    for i in range(2):
        annotated_form(data / "testing_data", seed=i, name=f"form{i}", size=36)
    report = tmp_path / "reports"
    args = [
        str(quickstart_run / "student"),
        "--data",
        str(data),
        "--report-dir",
        str(report),
        "--workers",
        "2",
    ]
    args += ["--ocr-scale", "1", "2", "--image-dpi", "100"]
    assert main(args) == 0
    text = (report / "ocr.md").read_text()
    # Absolute paths of this machine are named (the models' parent, the report directory), not printed.
    shown = ["$RUNS/student", "--data", str(data), "--report-dir", "$OUT", *args[5:]]
    assert f"Written by `python -m distill.studies.ocr {' '.join(shown)}`" in text
    assert (
        f"`$RUNS`: the directory holding the models' runs (here `…/{'/'.join(quickstart_run.parts[-2:])}`)"
        in text
    )
    assert "Measured on " in text and "Tesseract " in text
    results = json.loads((report / "ocr.json").read_text())
    assert [s["name"] for s in results["settings"]] == ["as is, 100 dpi", "enlarged ×2, 200 dpi"]
    (model,) = results["models"]
    assert model["boxes"] == "segment"
    for setting in results["settings"]:
        words = setting["agreement"]
        assert words["gold"] == 30 and words["matched"] >= 29 and words["same_text"] >= 28
        # Clean pages, lines as segments: the text student reads the same words either way, so F1 matches.
        ocr = model["ocr"][setting["name"]]
        if words["matched"] == words["same_text"] == words["gold"]:  # every word read right, one to one
            assert ocr["f1"] == pytest.approx(model["gold_words"]["f1"])
        assert abs(ocr["f1"] - model["gold_words"]["f1"]) <= 0.1
        assert f"| `$RUNS/student` | as given | segment | {setting['name']} |" in text


def test_the_gold_column_is_cross_checked_against_the_run_only_on_its_own_data(tmp_path: Path) -> None:
    from distill.studies.ocr import run_f1

    run = tmp_path / "run"
    (run / "student").mkdir(parents=True)
    (run / "config.toml").write_text(f'data = "{tmp_path / "funsd"}"\nholdout_forms = 0\n')
    (run / "metrics.json").write_text(json.dumps({"models": {"student": {"f1": 0.61}}}))
    config = str(run / "config.toml")
    assert run_f1(run / "student", config, tmp_path / "funsd") == 0.61
    assert run_f1(run / "student", config, tmp_path / "other") is None  # trained on other data
    assert run_f1(run / "onnx" / "student" / "int8", config, tmp_path / "funsd") is None  # a variant
    (run / "config.toml").write_text(f'data = "{tmp_path / "funsd"}"\nholdout_forms = 30\n')
    assert run_f1(run / "student", config, tmp_path / "funsd") is None  # scored on held-out training forms


def test_the_command_names_absolute_model_paths_by_a_placeholder(tmp_path: Path) -> None:
    from distill.studies.ocr import build_parser, placeholders, shown

    runs = tmp_path / "study" / "seed0"
    args = build_parser().parse_args(
        [
            str(runs / "teacher" / "teacher"),
            str(runs / "t6" / "onnx" / "student" / "int8"),
            "--report-dir",
            "reports",
        ]
    )
    named = placeholders(args)
    assert named == {"$RUNS": str(runs)}, (
        "the models' parents' common path; no $OUT for a relative report dir"
    )
    results = {"placeholders": named}
    assert shown(str(runs / "t6" / "onnx" / "student" / "int8"), results) == "$RUNS/t6/onnx/student/int8"
    assert shown("runs/latest", results) == "runs/latest", "a relative path stays as given"
