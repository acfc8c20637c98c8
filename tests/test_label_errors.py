"""Bad label input through the training CLI: one line naming what is wrong, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.builders import tiny_teacher
from distill.schema import FUNSD_LABELS
from distill.train import main

RECEIPTS = ["--preset", "tiny", "--data", "synthetic-receipts", "--synthetic-forms", "8", "--output-dir", "r"]


def error_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().err


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # runs/latest and the run directory land here


def test_unknown_label_in_the_labels_option(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_of([*RECEIPTS, "--labels", "menu.nm,menu.bogus"], capsys)
    assert "unknown label(s) in --labels: menu.bogus; the data has menu.cnt,menu.nm" in err


def test_empty_labels_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--labels is empty" in error_of([*RECEIPTS, "--labels", " , "], capsys)


def test_teacher_directory_on_other_labels_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = tmp_path / "funsd-teacher"
    tiny_teacher(["Date:", "Name:", "TOTAL"] * 30, FUNSD_LABELS).save(teacher)
    err = error_of([*RECEIPTS, "--stage", "student", "--teacher-dir", str(teacher)], capsys)
    assert "the model's labels ['O', 'B-HEADER'" in err and "differ from the run's ['O', 'B-menu.cnt'" in err
    assert str(teacher) in err
