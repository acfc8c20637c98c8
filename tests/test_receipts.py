"""A second label set end to end, offline: synthetic receipts (CORD-like dotted labels) through
`distill.train` and `export.onnx`, every report naming the receipt labels per type."""

from __future__ import annotations

import json
from pathlib import Path

from distill.data import load_source
from distill.data.receipts import RECEIPT_LABELS
from distill.predict import onnx_predictor
from tests.conftest import run_cli


def test_receipt_mode_is_deterministic_and_uses_every_label() -> None:
    a = load_source("synthetic-receipts", synthetic_forms=16, seed=3)
    b = load_source("synthetic-receipts", synthetic_forms=16, seed=3)
    assert a["train"]["tokens"] == b["train"]["tokens"] and a["test"]["bboxes"] == b["test"]["bboxes"]
    names = a["train"].features["ner_tags"].feature.names
    assert names == RECEIPT_LABELS.tags and len(RECEIPT_LABELS.types) == 15
    used = {names[t][2:] for form in a["train"]["ner_tags"] for t in form if t}
    assert used == set(RECEIPT_LABELS.types)
    total = a["train"][0]["tokens"].index("TOTAL")
    assert [names[t] for t in a["train"][0]["ner_tags"][total : total + 2]] == [
        "B-total.total_price",
        "I-total.total_price",
    ]


def test_train_and_export_on_receipts(tmp_path: Path) -> None:
    run, reports = tmp_path / "run", tmp_path / "reports"
    args = ["-m", "distill.train", "--preset", "quickstart", "--data", "synthetic-receipts"]
    args += ["--synthetic-forms", "16", "--epochs", "1", "--no-baseline"]
    args += ["--output-dir", str(run), "--report-dir", str(reports)]
    run_cli(args, cwd=tmp_path)
    types = list(RECEIPT_LABELS.types)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == types
    assert all(list(m["per_type"]) == types for m in metrics["models"].values())
    training = (reports / "training.md").read_text()
    assert all(f"| {t} (" in training for t in types)

    export = ["-m", "export.onnx", "--run-dir", str(run), "--variants", "fp32", "--report-dir", str(reports)]
    export += ["--parity-windows", "8", "--latency-repeats", "1"]
    exported = run_cli(export, cwd=tmp_path)
    assert "The `device` argument is deprecated" not in exported.stderr, "library noise is filtered"
    manifest = json.loads((run / "onnx" / "manifest.json").read_text())
    assert manifest["labels"] == types
    for model in ("teacher", "student"):
        assert list(manifest["models"][model]["variants"]["fp32"]["metrics"]["per_type"]) == types
    assert all(f"| {t} (" in (reports / "export.md").read_text() for t in types)
    # the exported student speaks the receipt labels, entities included
    form = load_source("synthetic-receipts", synthetic_forms=16, seed=42)["test"][0]
    prediction = onnx_predictor(run / "onnx" / "student" / "fp32", max_length=128, stride=32).predict_form(
        form["tokens"], form["bboxes"]
    )
    assert {p.label for p in prediction.words} <= set(RECEIPT_LABELS.tags)
    assert all(e.label in types and e.box is not None for e in prediction.entities)
