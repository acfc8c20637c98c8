"""Forms without words load; training skips them, evaluation scores nothing for them, nothing breaks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distill.builders import tiny_student, tiny_teacher
from distill.metrics import score_word_logits
from distill.predict import Predictor, TorchBackend, predict_word_logits
from distill.schema import FUNSD_LABELS
from tests.conftest import run_cli

WORDS = "Date Name Phone Company Amount Total invoice approved Reynolds Tobacco".split()


def write_form(directory: Path, name: str, n_segments: int) -> None:
    """A FUNSD-layout annotation and image; `n_segments` 0 gives a form without words."""
    labels = ["question", "answer", "header", "other"]
    segments = []
    for i in range(n_segments):
        words = [WORDS[(i + j) % len(WORDS)] for j in range(1 + i % 3)]
        box = [10, 10 + 20 * i, 10 + 40 * len(words), 25 + 20 * i]
        segments.append(
            {
                "id": i,
                "label": labels[i % 4],
                "box": box,
                "words": [{"text": w, "box": box} for w in words],
            }
        )
    (directory / "annotations" / f"{name}.json").write_text(json.dumps({"form": segments}))
    Image.new("RGB", (400, 400), "white").save(directory / "images" / f"{name}.png")


@pytest.fixture
def release_with_empty_forms(tmp_path: Path) -> Path:
    root = tmp_path / "forms"
    for split, forms in (("training_data", 6), ("testing_data", 2)):
        directory = root / split
        (directory / "annotations").mkdir(parents=True)
        (directory / "images").mkdir()
        for i in range(forms):
            write_form(directory, f"form{i}", 4 + i)
        write_form(directory, "zz-empty", 0)
    return root


def test_training_skips_empty_forms_and_reports_them(release_with_empty_forms: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["-m", "distill.train", "--preset", "tiny", "--data", str(release_with_empty_forms)]
    args += ["--epochs", "1", "--output-dir", str(run), "--report-dir", str(tmp_path / "reports")]
    proc = run_cli(args, cwd=tmp_path)
    assert "2 form(s) without words (1 in train, 1 in test)" in proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["empty_forms"] == {"train": 1, "test": 1}
    assert metrics["test_forms"] == 3 and metrics["test_words"] > 0
    for record in metrics["models"].values():
        assert 0.0 <= record["f1"] <= 1.0
    assert Predictor.from_dir(run / "student", max_length=128, stride=32).predict([]) == []


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_evaluation_gives_an_empty_form_no_rows_and_no_score(which: str) -> None:
    bundle = (
        tiny_teacher(WORDS * 5, FUNSD_LABELS) if which == "teacher" else tiny_student(WORDS * 5, FUNSD_LABELS)
    )
    image = Image.new("RGB", (100, 100), "white")
    full = {"tokens": WORDS[:4], "bboxes": [[10, 10, 50, 20]] * 4, "image": image}
    empty = {"tokens": [], "bboxes": [], "image": image}
    encoder, backend = bundle.encoder(32, 8), TorchBackend(bundle.model)
    assert encoder.encode_form([], [], image, tags=[]) == []
    for forms in ([empty, full, empty], [empty]):  # an empty form first, last, alone
        logits = predict_word_logits(encoder, backend, forms, batch_size=2)
        assert [len(x) for x in logits] == [len(f["tokens"]) for f in forms]
        assert all(x.shape[1] == 7 for x in logits), "an empty form's rows have the model's width"
    logits = predict_word_logits(encoder, backend, [empty, full], batch_size=2)
    alone = score_word_logits([[3, 4, 0, 5]], logits[1:], FUNSD_LABELS)
    with_empty = score_word_logits([[], [3, 4, 0, 5]], logits, FUNSD_LABELS)
    assert with_empty == alone, "an empty form adds nothing to the score"
    assert score_word_logits([[]], [np.zeros((0, 0), np.float32)], FUNSD_LABELS)["words"] == 0
