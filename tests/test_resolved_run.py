"""Issue 20: a run's options, labels, data and teachers are settled once, before anything is written.

Through the CLI's own entry point (`distill.train.main`, in this process: seconds per run), on a few
synthetic forms and tiny models, in a temporary working directory.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from distill.config import NOT_RUN_DEFINING
from distill.data.synthetic import make_synthetic
from distill.train import main

SMALL = ["--preset", "quickstart", "--synthetic-forms", "8", "--max-words", "30", "--max-steps", "2"]
PERMUTED = "ANSWER,HEADER,QUESTION"  # not the data's order (FUNSD's HEADER, QUESTION, ANSWER)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs (and runs/latest) land in a temporary working directory, never in the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(*args: str) -> int:
    return main([*SMALL, "--report-dir", "reports", *args])


def recorded(run: str) -> dict:
    return tomllib.loads(Path(run, "config.toml").read_text())


def run_defining(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in NOT_RUN_DEFINING}


def model_tags(path: Path) -> list[str]:
    id2label = json.loads((path / "config.json").read_text())["id2label"]
    return [id2label[k] for k in sorted(id2label, key=int)]


def test_a_later_stage_without_labels_keeps_the_runs_recorded_labels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Defect 1: the data's order was used, the teacher refused, and config.toml rewritten."""
    assert train("--alpha", "0", "--labels", PERMUTED, "--stage", "teacher", "--output-dir", "D") == 0
    before = recorded("D")
    assert before["labels"] == PERMUTED
    assert train("--alpha", "0", "--stage", "student", "--output-dir", "D") == 0, capsys.readouterr().err
    assert recorded("D")["labels"] == PERMUTED and run_defining(recorded("D")) == run_defining(before)
    assert model_tags(Path("D/student"))[1:3] == ["B-ANSWER", "I-ANSWER"], "the student has the run's labels"
    # And the run resumes both ways, with its labels named or not.
    assert train("--alpha", "0", "--stage", "student", "--output-dir", "D", "--labels", PERMUTED) == 0
    assert train("--alpha", "0", "--stage", "student", "--output-dir", "D") == 0


def broken_release(root: Path) -> Path:
    for split in ("training_data", "testing_data"):
        (root / split / "annotations").mkdir(parents=True)
        (root / split / "images").mkdir()
        (root / split / "annotations" / "f.json").write_text('{"form": [')
    return root


def test_a_refused_run_leaves_nothing_behind_and_the_corrected_command_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Defect 2: config.toml was written before validation, so the corrected command was refused."""
    assert train("--labels", "HEADER,QUESTION,ANSWR", "--stage", "teacher", "--output-dir", "D") == 2
    assert "unknown label(s) in --labels: ANSWR" in capsys.readouterr().err
    assert not Path("D").exists(), "nothing written for a refused run"
    assert train("--labels", "HEADER,QUESTION,ANSWER", "--stage", "teacher", "--output-dir", "D") == 0
    # A data error: no directory holding only config.toml.
    assert train("--data", str(broken_release(Path("broken"))), "--output-dir", "E") == 2
    assert "not valid JSON" in capsys.readouterr().err and not Path("E").exists()
    # A --teacher-dir trained on other labels: refused before anything is written, then corrected.
    other = ["--alpha", "0", "--stage", "teacher", "--labels", PERMUTED, "--output-dir", "T"]
    assert train(*other) == 0
    reuse = ["--alpha", "0", "--stage", "student", "--teacher-dir", "T/teacher", "--output-dir", "F"]
    assert train(*reuse) == 2
    assert "differ from the run's" in capsys.readouterr().err and not Path("F").exists()
    assert train(*reuse, "--labels", PERMUTED) == 0


def test_the_same_command_resumes_its_own_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Defect 3: raw option strings were compared with the normalised ones the run recorded."""
    spaced = ["--labels", "HEADER, QUESTION, ANSWER", "--stage", "teacher", "--alpha", "0"]
    assert train(*spaced, "--output-dir", "L") == 0
    assert train(*spaced, "--output-dir", "L") == 0, capsys.readouterr().err
    make_synthetic(6, 2, max_words=30, seed=1).save_to_disk("ds")
    assert train("--data", "ds/", "--stage", "teacher", "--output-dir", "S") == 0
    assert train("--data", "ds/", "--stage", "teacher", "--output-dir", "S") == 0, capsys.readouterr().err
    assert train("--data", "ds", "--stage", "teacher", "--output-dir", "S") == 0, capsys.readouterr().err
    assert recorded("S")["data"] == "ds"
    reuse = ["--alpha", "0", "--stage", "student", "--output-dir", "R"]
    assert train(*reuse, "--teacher-dir", "L/teacher/") == 0
    assert train(*reuse, "--teacher-dir", "L/teacher/") == 0, capsys.readouterr().err
    assert train(*reuse, "--teacher-dir", "L/teacher") == 0, capsys.readouterr().err
    # Another run-defining option is still another run.
    assert train(*spaced, "--seed", "3", "--output-dir", "L") == 2
    assert "--seed 42 -> 3" in capsys.readouterr().err


def test_feature_distillation_without_a_teacher_is_the_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Defect 4: `--alpha 0 --feature-weight 1` distils, but the check read alpha alone (KeyError in fit)."""
    assert train("--stage", "student", "--alpha", "0", "--feature-weight", "1", "--output-dir", "N") == 2
    err = capsys.readouterr().err
    assert "needs a fine-tuned teacher" in err and "Traceback" not in err
    assert not Path("N").exists()


def test_a_transfer_set_without_distillation_is_said_to_be_ignored_and_recorded_as_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Defect 6: --transfer-copies without distillation was silently ignored, yet recorded."""
    args = ["--stage", "student", "--alpha", "0", "--transfer-copies", "2", "--output-dir", "P"]
    assert train(*args) == 0
    assert "--transfer-copies 2 ignored" in capsys.readouterr().err
    metrics = json.loads(Path("P/metrics.json").read_text())
    assert metrics["distillation"]["transfer_copies"] == 0 and "transfer_set" not in metrics
    assert recorded("P")["transfer_copies"] == 0
    assert metrics["models"]["student"]["distilled"] is False
    assert train(*args) == 0, "the same command resumes the run that recorded 0"


def test_a_resumed_run_says_its_finished_teacher_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 30, defect 9: the students said they were kept on resume; the teacher said nothing."""
    assert train("--output-dir", "K") == 0
    capsys.readouterr()
    assert train("--output-dir", "K") == 0
    err = capsys.readouterr().err
    assert "teacher: finished earlier in K, kept" in err
    assert "student: finished earlier in K, kept" in err


def test_the_recorded_box_mode_is_the_one_the_data_had(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 30, defect 4: receipts and dataset directories train on their own boxes but recorded
    word_boxes = false (so predict gave segment boxes), and --word-boxes on a dataset directory was
    ignored and recorded as true. predict then serves the mode the data had."""
    from distill.predict.__main__ import main as predict
    from tests.rendered_pages import annotated_form

    teacher = ["--stage", "teacher", "--alpha", "0"]
    assert train("--data", "synthetic-receipts", *teacher, "--output-dir", "R") == 0
    assert recorded("R")["word_boxes"] is True
    capsys.readouterr()
    assert predict(["R/teacher", str(annotated_form(Path("page")))]) == 0
    assert "boxes: word boxes (each word's own box), as the model was trained" in capsys.readouterr().err
    make_synthetic(6, 2, max_words=30, seed=1, word_boxes=True).save_to_disk("words")
    make_synthetic(6, 2, max_words=30, seed=1).save_to_disk("segments")
    assert train("--data", "words", *teacher, "--output-dir", "W") == 0
    assert recorded("W")["word_boxes"] is True
    assert train("--data", "segments", *teacher, "--output-dir", "S") == 0
    assert recorded("S")["word_boxes"] is False
    capsys.readouterr()
    assert train("--data", "segments", *teacher, "--word-boxes", "--output-dir", "X") == 2
    (said,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert "--word-boxes applies to a FUNSD-layout directory or synthetic forms" in said
    assert not Path("X").exists()
    # Where the source builds either kind, the flag decides, as before.
    assert train(*teacher, "--word-boxes", "--output-dir", "F") == 0
    assert recorded("F")["word_boxes"] is True
