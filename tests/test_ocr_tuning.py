"""Issue 29: OCR settings are measured on training pages, never on a test page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from distill.errors import DistillError
from distill.studies import ocr_tuning
from tests.rendered_pages import annotated_form

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def test_the_tuning_reads_training_pages_only_and_recommends_within_the_budget(tmp_path: Path) -> None:
    data = tmp_path / "funsd"
    for seed in range(3):
        annotated_form(data / "training_data", seed=seed, name=f"form{seed}")
    annotated_form(data / "testing_data", seed=9, name="test")
    (data / "testing_data" / "images" / "test.png").write_bytes(b"not an image: reading it would fail")
    code = ocr_tuning.main(["--data", str(data), "--settings", "psm3:1", "psm11:1", "--budget", "1000",
                            "--workers", "1", "--report-dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "out" / "ocr-tuning.json").read_text())
    assert [r["pages"] for r in results["rows"]] == [3, 3], "the three training pages, no test page"
    assert all(r["read_right"] > 0.8 for r in results["rows"]), "clean rendered pages read right"
    assert results["recommended"]["setting"] in ("psm3:1", "psm11:1")
    assert "No test page is read." in (tmp_path / "out" / "ocr-tuning.md").read_text()


def test_the_recommendation_is_the_best_reader_that_fits_the_budget() -> None:
    rows = [
        {"setting": "a", "read_right": 0.70, "seconds_per_page": 0.5},
        {"setting": "b", "read_right": 0.80, "seconds_per_page": 0.9},
        {"setting": "c", "read_right": 0.90, "seconds_per_page": 1.5},
    ]
    assert ocr_tuning.recommended(rows, 1.0)["setting"] == "b"
    assert ocr_tuning.recommended(rows, 2.0)["setting"] == "c"
    assert ocr_tuning.recommended(rows, 0.1) is None
    with pytest.raises(DistillError, match="psmN:SCALE"):
        ocr_tuning.parse_setting("sparse")
