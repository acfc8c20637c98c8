"""`python -m distill.predict` as a user runs it: real Tesseract, real files, real signals.

The model is the quickstart run (tests/conftest.py), served as a run directory (its student) or
by model directory.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from distill.data.funsd import read_funsd_form
from distill.predict import Predictor
from distill.predict.command import PredictOptions, predict_files
from tests.conftest import FUNSD, REPO, run_cli
from tests.pdf_files import encrypted_pdf, images_pdf
from tests.rendered_pages import annotated_form, random_lines, render_page

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Tesseract not installed (apt-get install tesseract-ocr)"
)
FUNSD_DIR = Path(os.environ.get("DOCDISTILL_FUNSD", FUNSD))  # a worktree elsewhere can point at the copy


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def stderr_lines_naming(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.splitlines() if name in line]


@pytest.mark.parametrize("model", ["run", "teacher"])
def test_annotation_json_gives_the_same_labels_as_the_predictor(
    quickstart_run: Path, tmp_path: Path, model: str
) -> None:
    annotation = annotated_form(tmp_path / "data")
    target = quickstart_run if model == "run" else quickstart_run / "teacher"
    out = tmp_path / "out.jsonl"
    proc = run_cli(["-m", "distill.predict", str(target), str(tmp_path / "data"), "-o", str(out)], tmp_path)
    (line,) = records(out)  # the PNG is the JSON's page image, not a page of its own
    assert line["source"] == str(tmp_path / "data" / "annotations" / "form.json") and line["error"] is None
    # The same form as training reads it (segment boxes, the run's windows: quickstart's 128/32).
    form, _ = read_funsd_form(annotation, tmp_path / "data" / "images" / "form.png")
    predictor = Predictor.from_dir(quickstart_run / ("student" if model == "run" else "teacher"), 128, 32)
    expected = predictor.predict_form(form["tokens"], form["bboxes"], Image.open(form["image"]))
    assert [w["text"] for w in line["words"]] == form["tokens"]
    assert [w["label"] for w in line["words"]] == [w.label for w in expected.words]
    assert [(e["label"], e["text"]) for e in line["entities"]] == [
        (e.label, e.text) for e in expected.entities
    ]
    assert "max length/stride 128/32" in proc.stderr and "segment boxes" in proc.stderr
    if model == "run":
        assert "the run's PyTorch student" in proc.stderr
    assert "1 pages, 15 words" in proc.stderr and "no OCR" in proc.stderr


@needs_tesseract
def test_a_funsd_test_image_ends_with_entities_and_a_summary(quickstart_run: Path, tmp_path: Path) -> None:
    images = sorted((FUNSD_DIR / "testing_data" / "images").glob("*.png"))
    if not images:
        pytest.skip(f"no FUNSD copy at {FUNSD_DIR} (set DOCDISTILL_FUNSD to point at one)")
    out = tmp_path / "funsd.jsonl"
    proc = run_cli(["-m", "distill.predict", str(quickstart_run), str(images[0]), "-o", str(out)], tmp_path)
    (line,) = records(out)
    assert line["error"] is None and line["width"] == Image.open(images[0]).width
    assert len(line["words"]) > 50, "Tesseract read a FUNSD form"
    assert line["entities"], "and the model found entities in it"
    assert all(0 <= v <= 1000 for w in line["words"] for v in w["box"])
    summary = proc.stderr.splitlines()
    assert any("1 pages" in s and "pages/s" in s for s in summary)
    assert any(s.startswith("OCR ") and "% of the page time" in s for s in summary)


@needs_tesseract
def test_a_multi_page_pdf_gives_one_line_per_page_in_workers(quickstart_run: Path, tmp_path: Path) -> None:
    first, truth1 = render_page(random_lines(1, lines=3), size=36)
    last, truth3 = render_page(random_lines(2, lines=3), size=36)
    blank = Image.new("RGB", first.size, "white")
    pdf = images_pdf(tmp_path / "scan.pdf", [first, blank, last], dpi=100)
    out = tmp_path / "scan.jsonl"
    args = [
        "-m",
        "distill.predict",
        str(quickstart_run / "student"),
        str(pdf),
        "--dpi",
        "100",
        "-o",
        str(out),
    ]
    proc = run_cli([*args, "--workers", "2"], tmp_path)
    lines = records(out)
    assert [(r["source"], r["page"]) for r in lines] == [(str(pdf), 1), (str(pdf), 2), (str(pdf), 3)]
    for record, truth in ((lines[0], truth1), (lines[2], truth3)):
        assert record["error"] is None
        read = [w["text"] for w in record["words"]]
        assert sum(t.text in read for t in truth) >= 0.9 * len(truth)
    # The blank page failed on its own: recorded in its line, named once on stderr, counted.
    assert "no text" in lines[1]["error"] and lines[1]["words"] == [] and lines[1]["entities"] == []
    assert len(stderr_lines_naming(proc.stderr, "scan.pdf page 2")) == 1
    assert "3 pages (1 failed" in proc.stderr and "2 worker processes" in proc.stderr
    # One process (here, in this one) gives the same lines as two.
    options = PredictOptions(
        str(quickstart_run / "student"), [str(pdf)], str(tmp_path / "one.jsonl"), dpi=100
    )
    totals = predict_files(options, log=io.StringIO())
    assert records(tmp_path / "one.jsonl") == lines and (totals.pages, totals.failed) == (3, 1)


def bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    (folder / "unreadable.png").write_bytes(b"this is not a PNG")
    encrypted_pdf(folder / "locked.pdf")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")
    Image.new("RGB", (600, 400), "white").save(folder / "blank.png")
    return {
        "unreadable.png": folder / "unreadable.png",
        "locked.pdf": folder / "locked.pdf",
        "corrupt.pdf": folder / "corrupt.pdf",
        "blank.png": folder / "blank.png",
    }


@needs_tesseract
def test_each_bad_input_gives_one_line_and_the_other_pages_go_on(
    quickstart_run: Path, tmp_path: Path
) -> None:
    bad = bad_inputs(tmp_path / "bad")
    good = annotated_form(tmp_path / "good")
    out = tmp_path / "out.jsonl"
    inputs = [str(p) for p in bad.values()] + [str(good)]
    proc = run_cli(["-m", "distill.predict", str(quickstart_run), *inputs, "-o", str(out)], tmp_path)
    lines = {Path(r["source"]).name: r for r in records(out)}
    assert set(lines) == {*bad, "form.json"}
    expected = {
        "unreadable.png": "image does not open",
        "locked.pdf": "encrypted",
        "corrupt.pdf": "does not open, corrupt",
        "blank.png": "no text",
    }
    for name, problem in expected.items():
        assert problem in lines[name]["error"], lines[name]
        (said,) = stderr_lines_naming(proc.stderr, name)  # exactly one line, naming the file
        assert problem in said
    assert lines["form.json"]["error"] is None and len(lines["form.json"]["words"]) == 15
    assert "5 pages (4 failed" in proc.stderr


@needs_tesseract
def test_strict_makes_a_bad_page_fatal_and_writes_nothing(quickstart_run: Path, tmp_path: Path) -> None:
    bad = bad_inputs(tmp_path / "bad")
    good = annotated_form(tmp_path / "good")
    out = tmp_path / "out.jsonl"
    args = ["-m", "distill.predict", str(quickstart_run), str(good), str(bad["blank.png"]), "-o", str(out)]
    proc = run_cli([*args, "--strict"], tmp_path, check=False)
    assert proc.returncode == 2
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))
    (said,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "blank.png" in said and "no text" in said and "--strict" in said


def test_a_directory_that_is_not_a_model_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notamodel").mkdir()
    form = annotated_form(tmp_path / "data")
    out = tmp_path / "out.jsonl"
    proc = run_cli(
        ["-m", "distill.predict", str(tmp_path / "notamodel"), str(form), "-o", str(out)],
        tmp_path,
        check=False,
    )
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'notamodel'}: not a model directory (no model.onnx, openvino_model.xml or "
        "config.json with weights): pass a run's student/ or teacher/, or an exported variant under onnx/"
    ]


def _without_tesseract(tmp_path: Path) -> dict[str, str]:
    """This environment with a PATH that has no tesseract on it (python is called by its full path)."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return {**os.environ, "PATH": str(empty), "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def test_no_tesseract_is_one_line_and_annotation_json_still_works(
    quickstart_run: Path, tmp_path: Path
) -> None:
    image, _ = render_page(random_lines(0, lines=2))
    image.save(tmp_path / "scan.png")
    env = _without_tesseract(tmp_path)
    command = [
        sys.executable,
        "-m",
        "distill.predict",
        str(quickstart_run),
        "-o",
        str(tmp_path / "out.jsonl"),
    ]
    proc = subprocess.run([*command, str(tmp_path / "scan.png")], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and not (tmp_path / "out.jsonl").exists()
    (line,) = proc.stderr.strip().splitlines()
    assert "tesseract" in line and "apt-get install tesseract-ocr" in line and "annotation JSON" in line
    form = annotated_form(tmp_path / "data")
    proc = subprocess.run([*command, str(form)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(records(tmp_path / "out.jsonl")) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_mid_run_leaves_no_partial_output(quickstart_run: Path, tmp_path: Path, sig: int) -> None:
    data = tmp_path / "many"
    data.mkdir()
    source = annotated_form(tmp_path / "one")
    for i in range(600):
        shutil.copy(source, data / f"form{i:03d}.json")
    out = tmp_path / "out.jsonl"
    out.write_text("the previous run's output\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill.predict", str(quickstart_run), str(data), "-o", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(".out.jsonl.*.tmp")):  # the run has started writing
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    assert proc.poll() is None, "the run finished before it could be interrupted: give it more pages"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert out.read_text() == "the previous run's output\n"  # never replaced by half a run
    if sig == signal.SIGTERM:  # unwound: the temporary file is gone too, and the user is told
        assert proc.returncode == 130
        assert not list(tmp_path.glob(".out.jsonl.*"))
        assert "interrupted: no output written" in proc.stderr.read()


def test_an_openvino_failure_is_named_by_its_cause_not_its_trace() -> None:
    from distill.predict.openvino_runtime import reason

    err = RuntimeError(
        "Exception from src/inference/src/cpp/core.cpp:132:\n"
        "Exception from src/plugins/intel_cpu/src/graph.cpp:77:\n"
        "Cannot allocate 1073741824 bytes for the weights of MatMul_12\n"
    )
    assert reason(err) == "Cannot allocate 1073741824 bytes for the weights of MatMul_12"
    assert reason(RuntimeError("Exception from src/inference/src/cpp/core.cpp:132:\n")).startswith(
        "Exception"
    )
    assert reason(RuntimeError("")) == "RuntimeError"
