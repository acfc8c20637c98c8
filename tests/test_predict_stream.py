"""Which model a MODEL argument serves, with which windows; and the stream's memory over many pages."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PIL import Image

from distill.errors import DistillError
from distill.predict import Predictor
from distill.predict.loading import load_predictor, serving
from distill.predict.output import page_record
from distill.predict.pages import PageInput, PageJob
from distill.predict.stream import label_pages


def exported_run(quickstart_run: Path, tmp_path: Path, word_boxes: bool) -> Path:
    """A run directory laid out as after `python -m export.onnx` (manifest and variant folders).

    Only what serving() reads is real here: the variant's model.onnx is never loaded.
    """
    run = tmp_path / "run"
    (run / "onnx" / "student" / "int8").mkdir(parents=True)
    (run / "onnx" / "student" / "int8" / "model.onnx").write_bytes(b"")
    shutil.copytree(quickstart_run / "student", run / "student")
    config = (quickstart_run / "config.toml").read_text()
    (run / "config.toml").write_text(
        config.replace("word_boxes = false", f"word_boxes = {str(word_boxes).lower()}")
    )
    manifest = {
        "eval": {"max_length": 96, "stride": 16},
        "models": {
            "student": {
                "recommended_cpu": "int8",
                "variants": {"int8": {"path": "onnx/student/int8/model.onnx"}},
                "exported": {"eval": {"max_length": 96, "stride": 16}},
            }
        },
    }
    (run / "onnx" / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_a_run_directory_serves_its_recommended_cpu_variant_with_its_windows(
    quickstart_run: Path, tmp_path: Path
) -> None:
    run = exported_run(quickstart_run, tmp_path, word_boxes=True)
    served = serving(run)
    assert served.path == run / "onnx" / "student" / "int8"
    assert "recommended CPU variant" in served.chosen and "int8" in served.chosen
    # The run's config.toml (quickstart: 128/32), two levels above the variant, not the manifest's.
    assert (served.max_length, served.stride, served.word_boxes) == (128, 32, True)
    assert served.settings_from == str((run / "config.toml").resolve())
    # Without the manifest's recommendation: the PyTorch student.
    (run / "onnx" / "manifest.json").unlink()
    served = serving(run)
    assert served.path == run / "student" and "PyTorch student" in served.chosen
    assert (served.max_length, served.stride) == (128, 32)
    encoder = load_predictor(run).encoder  # what it loads: the student, windowed as its run was
    assert (encoder.max_length, encoder.stride) == (128, 32)


def test_a_variant_moved_away_from_its_run_takes_the_manifest_windows(
    quickstart_run: Path, tmp_path: Path
) -> None:
    run = exported_run(quickstart_run, tmp_path, word_boxes=False)
    moved = tmp_path / "shipped"
    shutil.copytree(run / "onnx", moved)  # shipped/student/int8 beside shipped/manifest.json
    served = serving(moved / "student" / "int8")
    assert (served.max_length, served.stride) == (96, 16) and served.settings_from.endswith("manifest.json")
    (moved / "manifest.json").unlink()
    served = serving(moved / "student" / "int8")
    assert (served.max_length, served.stride) == (512, 128) and served.settings_from.startswith("defaults")


def test_what_is_not_a_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(DistillError, match="no such model directory"):
        serving(tmp_path / "missing")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text("max_length = 128\n")
    with pytest.raises(DistillError, match="run directory without a student"):
        serving(tmp_path / "run")


def _pages(count: int) -> Iterator[PageInput]:
    """Pages with words and a 3 MB page image each, made as the stream asks for them."""
    words = "invoice total amount date number account name address phone street".split()
    boxes = [[10 * i, 10, 10 * i + 8, 20] for i in range(len(words))]
    for i in range(count):
        image = Image.new("RGB", (1000, 1000), "white")
        yield PageInput(
            PageJob(Path(f"page{i}.png"), 1, "image"), list(words), boxes, boxes, image, (1000, 1000)
        )


def test_memory_stays_flat_over_many_pages(quickstart_run: Path) -> None:
    """Pages hold their image until labelled: a stream that kept pages (or their images) would grow
    by 3 MB a page; a flat one holds about --pages-per-step of them at any time."""
    predictor = Predictor.from_dir(quickstart_run / "student", 128, 32)
    process = psutil.Process()
    sink = io.StringIO()
    for result in label_pages(predictor, _pages(16), pages_per_step=16):  # warm: caches, arenas
        sink.write(json.dumps(page_record(result)))
    start = peak = process.memory_info().rss
    for n, result in enumerate(label_pages(predictor, _pages(150), pages_per_step=16)):
        sink.write(json.dumps(page_record(result)) + "\n")
        if n % 16 == 0:
            peak = max(peak, process.memory_info().rss)
            sink.seek(0), sink.truncate()  # the output is a file: it does not stay in memory
    grown = (peak - start) / 2**20
    assert grown < 150, f"memory grew {grown:.0f} MiB over 150 pages of 3 MB images"


def test_pages_sharing_a_batch_get_the_labels_they_get_alone(quickstart_run: Path) -> None:
    predictor = Predictor.from_dir(quickstart_run / "teacher", 128, 32)  # boxes and the image matter here
    pages = list(_pages(3))
    pages[1].words, pages[1].boxes = pages[1].words[:4], pages[1].boxes[:4]
    forms = [{"tokens": p.words, "bboxes": p.boxes, "image": p.image} for p in pages]
    together = predictor.predict_many([*forms, {"tokens": [], "bboxes": [], "image": None}])
    alone = [predictor.predict(f["tokens"], f["bboxes"], f["image"]) for f in forms]
    assert [[w.label for w in page] for page in together] == [[w.label for w in page] for page in alone] + [
        []
    ]
    for page, single in zip(together, alone, strict=False):
        assert [w.score for w in page] == pytest.approx([w.score for w in single], abs=1e-4)
