"""`python -m distill.predict`'s options that cannot work are refused before the first page is read,
and --strict writes nothing, to a file or to stdout, unless every page passes (issue 30, defects 7, 8).

In this process (`distill.predict.__main__.main`), on an untrained tiny student saved as a model directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from distill.builders import tiny_student
from distill.predict import command
from distill.predict.__main__ import main
from distill.schema import FUNSD_LABELS
from tests.rendered_pages import annotated_form

WORDS = "Date Name Phone Company Amount Total invoice approved".split() * 20


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("predict-options") / "student"
    tiny_student(WORDS, FUNSD_LABELS).save(path)
    return path


class PageRead(AssertionError):
    pass


def no_page_read(*args: object, **kwargs: object) -> None:
    raise PageRead("a page was read before the options were checked")


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--max-length", "100000"], "--max-length 100000 is beyond the 512 positions this model has"),
        (["--stride", "-5"], "--stride must not be negative, got -5"),
        (["-o", "{dir}"], "--output names a directory"),
    ],
)
def test_bad_options_are_one_line_before_any_page_is_read(
    model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    problem: str,
) -> None:
    form = annotated_form(tmp_path / "data")
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(command, "PageReader", no_page_read)
    flags = [f.replace("{dir}", str(tmp_path / "out")) for f in flags]
    assert main([str(model), str(form), *flags]) == 2
    err = capsys.readouterr().err
    (said,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert problem in said and "Traceback" not in err


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract not installed")
def test_strict_to_stdout_prints_no_line_when_a_later_page_fails(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = annotated_form(tmp_path / "good")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a PNG")
    assert main([str(model), str(good), str(bad), "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == "", "the good page's line was printed before the bad page stopped the run"
    assert "bad.png" in err and "--strict" in err
    # Without --strict the good page's line is there, and the bad page's names its error.
    assert main([str(model), str(good), str(bad)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["error"] is None for line in lines] == [True, False]
