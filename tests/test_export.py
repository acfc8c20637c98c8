"""`python -m export.onnx` end to end on a tiny run: every variant written, loadable, validated, scored.

The run is built with the models API (untrained tiny teacher, DistilBERT student and a LayoutLM
layout-aware student as `student-baseline`) and exported once for the whole module; parity does
not need trained weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill.config import TrainConfig
from distill.models import load_bundle, tiny_student, tiny_teacher, with_layout
from distill.predict import OrtBackend, Predictor, TorchBackend, onnx_predictor
from distill.run_dir import load_run_data
from distill.schema import FUNSD_LABELS
from distill.windows import pad_batch
from export import onnx as export_cli
from export.pipeline import VARIANTS

FAST = ["--latency-repeats", "2", "--parity-windows", "16", "--calibration-windows", "8"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("export") / "run"
    config = TrainConfig(
        data="synthetic",
        synthetic_forms=16,
        max_words=80,
        teacher="tiny",
        student="tiny",
        max_length=128,
        stride=32,
    )
    run.mkdir()
    config.write(run / "config.toml")
    words = [w for row in load_run_data(config)["train"] for w in row["tokens"]]
    torch.manual_seed(0)
    tiny_teacher(words, FUNSD_LABELS).save(run / "teacher")
    student = tiny_student(words, FUNSD_LABELS)
    student.save(run / "student")
    layout = with_layout(student)
    with torch.no_grad():  # boxes start at zero weight; give them some so parity covers the bbox path
        for table in (
            "x_position_embeddings",
            "y_position_embeddings",
            "h_position_embeddings",
            "w_position_embeddings",
        ):
            getattr(layout.model.layoutlm.embeddings, table).weight.normal_(0.0, 0.2)
    layout.save(run / "student-baseline")
    return run


@pytest.fixture(scope="module")
def exported(run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    reports = tmp_path_factory.mktemp("reports")
    assert export_cli.main(["--run-dir", str(run), "--report-dir", str(reports), *FAST]) == 0
    manifest = json.loads((run / "onnx" / "manifest.json").read_text())
    return {"manifest": manifest, "reports": reports}


def test_every_variant_is_written_and_loads(run: Path, exported: dict) -> None:
    models = exported["manifest"]["models"]
    assert list(models) == ["teacher", "student", "student-baseline"]
    for name, entry in models.items():
        assert list(entry["variants"]) == list(VARIANTS)
        for variant, fig in entry["variants"].items():
            path = run / fig["path"]
            assert path == run / "onnx" / name / variant / "model.onnx" and path.is_file()
            assert fig["size_bytes"] == path.stat().st_size > 0
            assert (path.parent / "config.json").is_file() and (
                path.parent / "tokenizer_config.json"
            ).is_file()
            OrtBackend(path)  # loads in the installed onnxruntime
    assert not list((run / "onnx").glob(".*")), "temporary export folders left behind"


def test_fp32_parity_within_tolerance(exported: dict) -> None:
    for name, entry in exported["manifest"]["models"].items():
        bound = 1e-3 if name == "teacher" else 1e-4
        for variant in ("fp32", "fp32-optimized"):
            parity = entry["variants"][variant]["parity"]
            assert parity["tolerance"] == bound
            assert parity["within_tolerance"] and parity["max_abs_diff"] <= bound, (name, variant, parity)
            assert parity["argmax_agreement"] == 1.0 and parity["windows"] > 0


def test_manifest_holds_every_figure(exported: dict) -> None:
    manifest = exported["manifest"]
    assert manifest["eval"]["split"] == "test" and manifest["eval"]["forms"] > 0
    for entry in manifest["models"].values():
        assert 0.0 <= entry["pytorch"]["f1"] <= 1.0 and entry["pytorch"]["parameters"] > 0
        for variant, fig in entry["variants"].items():
            assert fig["export_seconds"] >= 0
            assert {"max_abs_diff", "mean_abs_diff", "argmax_agreement"} <= set(fig["parity"])
            assert fig["f1"] is not None and fig["delta_f1_points"] == pytest.approx(
                (fig["f1"] - entry["pytorch"]["f1"]) * 100, abs=1e-3
            )
            if variant != "fp16":
                assert fig["latency_ms"] > 0
        assert entry["variants"]["fp32"]["inputs"]
        assert entry["variants"]["fp32-optimized"]["fusions"]
        int8 = entry["variants"]["int8"]
        assert [a["name"] for a in int8["attempts"]] == list(export_cli.ATTEMPTS)
        for attempt in int8["attempts"]:
            if attempt["error"] and "not tried" in attempt["error"]:  # reduce_range on a VNNI CPU
                continue
            assert attempt["error"] is None, attempt
            assert attempt["f1"] is not None and "meets_budget" in attempt
            assert attempt["details"]["gate"]["forms"] == manifest["gate"]["forms"]
            if attempt["meets_budget"]:
                assert attempt["latency_ms"] > 0 and attempt["details"]["timing"]["rounds"] >= 5
        assert int8["method"] in export_cli.ATTEMPTS and int8["budget_f1_points"] == 1.0
        assert int8["isa"] == manifest["machine"]["int8_isa"] and int8["choice"]["margin"] >= 0.10
        fp16 = entry["variants"]["fp16"]
        assert fp16["scored"] or fp16["not_scored_reason"]
        assert entry["recommended_cpu"] in VARIANTS and entry["recommended_cpu_reason"]
        assert entry["recommended_gpu"] == ("fp16" if fp16.get("meets_gate") else "fp32-optimized")


def test_the_gate_chooses_on_held_out_training_forms_and_the_test_split_is_scored_once(
    exported: dict,
) -> None:
    manifest = exported["manifest"]
    gate = manifest["gate"]
    assert gate["forms"] > 0 and "perturbed copies of" in gate["split"]
    assert "training forms held out of calibration" in gate["split"]
    assert gate["int8_agreement_floor"] == 0.90 and gate["fp16_agreement_floor"] == 0.99
    for entry in manifest["models"].values():
        int8 = entry["variants"]["int8"]
        kept = next(a for a in int8["attempts"] if a["name"] == int8["method"])
        assert kept["f1"] == int8["gate"]["f1"]  # the attempts carry gate F1 ...
        assert int8["metrics"]["f1"] == int8["f1"]  # ... the variant its test F1, measured once
        assert entry["pytorch"]["gate_f1"] == int8["gate"]["reference_f1"]
        assert entry["variants"]["fp16"]["gate"]["agreement_floor"] == 0.99


def test_report_goes_to_the_report_dir(exported: dict) -> None:
    text = (exported["reports"] / "export.md").read_text()
    for heading in ("## teacher", "## student", "## student-baseline", "int8 attempts", "Fusions:"):
        assert heading in text
    # The command as it ran, options included, so the report can be regenerated exactly; the run
    # directory (absolute, outside the working directory) as the placeholder RUN, explained.
    assert "Written by `python -m export.onnx --run-dir RUN --report-dir " in text
    assert "; RUN: the run directory below." in text and f"Run `{exported['manifest']['run']}`" in text
    assert "--latency-repeats 2 --parity-windows 16 --calibration-windows 8`" in text


def test_teacher_inputs_and_dynamic_axes(run: Path, exported: dict) -> None:
    inputs = exported["manifest"]["models"]["teacher"]["variants"]["fp32"]["inputs"]
    assert list(inputs) == ["input_ids", "bbox", "attention_mask", "pixel_values"]
    assert inputs["input_ids"] == ["batch_size", "sequence_length"]


def test_teacher_runs_in_a_plain_inference_session(run: Path, exported: dict) -> None:
    """optimum's ORT classes are not tested upstream for LayoutLMv3: a bare session, two shapes."""
    bundle = load_bundle(run / "teacher")
    forms = [dict(row) for row in load_run_data(TrainConfig.read(run / "config.toml"))["test"]]
    windows = bundle.encoder(128, 32).encode_form(forms[0]["tokens"], forms[0]["bboxes"], forms[0]["image"])
    session = ort.InferenceSession(
        str(run / "onnx/teacher/fp32/model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    for chunk in (
        windows[:1],
        [windows[0], {k: v[:-3] if k != "pixel_values" else v for k, v in windows[0].items()}],
    ):
        batch = pad_batch(chunk, bundle.tokenizer.pad_token_id)
        (logits,) = session.run(None, {n: batch[n] for n in names})
        expected = TorchBackend(bundle.model)(batch)
        keep = batch["attention_mask"].astype(bool)
        assert logits.shape == expected.shape
        np.testing.assert_allclose(logits[keep], expected[keep], atol=1e-3)


def test_student_loads_in_optimum_and_runs_in_a_pipeline(run: Path, exported: dict) -> None:
    from optimum.onnxruntime import ORTModelForTokenClassification
    from transformers import AutoTokenizer, pipeline

    for variant in VARIANTS:
        folder = run / "onnx" / "student" / variant
        model = ORTModelForTokenClassification.from_pretrained(folder, provider="CPUExecutionProvider")
        tagger = pipeline(
            "token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder)
        )
        tags = tagger("Name: John Smith Date: 12/03/1998")
        assert tags and all(t["entity"] in model.config.label2id for t in tags)


def test_layout_student_exports_with_parity_and_fused_attention(run: Path, exported: dict) -> None:
    entry = exported["manifest"]["models"]["student-baseline"]
    assert entry["pytorch"]["model_type"] == "layoutlm"
    assert "bbox" in entry["variants"]["fp32"]["inputs"]
    # The classic-form attention export lets onnxruntime fuse LayoutLM's attention like BERT's.
    assert entry["variants"]["fp32-optimized"]["fusions"].get("Attention", 0) > 0
    # The boxes matter to the exported graph (the fixture gave the 2-D embeddings weight).
    backend = OrtBackend(run / "onnx/student-baseline/fp32/model.onnx")
    bundle = load_bundle(run / "student-baseline")
    form = dict(load_run_data(TrainConfig.read(run / "config.toml"))["test"][0])
    batch = pad_batch(bundle.encoder(128, 32).encode_form(form["tokens"], form["bboxes"])[:1], 0)
    moved = {**batch, "bbox": np.clip(batch["bbox"] + 150, 0, 1000)}
    assert np.abs(backend(batch) - backend(moved)).max() > 1e-3


def test_onnx_predictor_agrees_with_pytorch(run: Path, exported: dict) -> None:
    form = dict(load_run_data(TrainConfig.read(run / "config.toml"))["test"][0])
    for name in ("teacher", "student", "student-baseline"):
        ours = onnx_predictor(run / "onnx" / name / "fp32", max_length=128, stride=32)
        reference = Predictor.from_dir(run / name, max_length=128, stride=32)
        got = ours.predict(form["tokens"], form["bboxes"], form["image"])
        want = reference.predict(form["tokens"], form["bboxes"], form["image"])
        assert [p.label for p in got] == [p.label for p in want]
        assert max(abs(a.score - b.score) for a, b in zip(got, want, strict=True)) < 1e-4


def test_parity_failure_exits_non_zero_and_keeps_the_previous_export(
    run: Path, exported: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    before = {p: p.stat().st_mtime_ns for p in (run / "onnx" / "student").rglob("*")}
    code = export_cli.main(
        [
            "--run-dir",
            str(run),
            "--models",
            "student",
            "--variants",
            "fp32",
            "--atol",
            "1e-12",
            "--report-dir",
            str(tmp_path),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "beyond the tolerance 1e-12" in err and "Traceback" not in err
    assert {p: p.stat().st_mtime_ns for p in (run / "onnx" / "student").rglob("*")} == before


def test_re_export_replaces_one_model_and_keeps_the_others(run: Path, exported: dict, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    code = export_cli.main(
        [
            "--run-dir",
            str(copy),
            "--models",
            "student",
            "--variants",
            "fp32",
            "--report-dir",
            str(tmp_path),
            *FAST,
        ]
    )
    assert code == 0
    manifest = json.loads((copy / "onnx" / "manifest.json").read_text())
    assert list(manifest["models"]["student"]["variants"]) == ["fp32"]
    assert sorted(p.name for p in (copy / "onnx" / "student").iterdir()) == ["fp32"]
    assert list(manifest["models"]["teacher"]["variants"]) == list(VARIANTS)
    assert manifest["models"]["student"]["recommended_cpu"] == "fp32"


def test_gate_forms_are_perturbed_copies_never_a_training_or_test_form_as_it_is() -> None:
    """The model was trained on its training forms: the gate sees copies it never saw, from training data only."""
    from export.onnx import GATE_COPIES, gate_copies

    names = ["O", "B-QUESTION", "I-QUESTION", "B-ANSWER"]
    train = [
        {
            "tokens": [f"w{i}_{j}" for j in range(30)],
            "bboxes": [[10 * j, 10 * i, 10 * j + 8, 10 * i + 8] for j in range(30)],
            "ner_tags": [(1, 2, 3, 0)[j % 4] for j in range(30)],
            "image": None,
        }
        for i in range(6)
    ]
    held = train[-2:]
    copies = gate_copies(held, train, names)
    assert len(copies) == GATE_COPIES * len(held)
    originals = {tuple(form["tokens"]) for form in train}
    vocabulary = {word for form in train for word in form["tokens"]}
    for copy in copies:
        assert tuple(copy["tokens"]) not in originals, "a gate form is a training form as it is"
        assert set(copy["tokens"]) <= vocabulary, "only training words"
    # Every word keeps its own tag, in its shuffled segment.
    for copy, form in zip(copies, [f for f in held for _ in range(GATE_COPIES)], strict=True):
        assert sorted(copy["ner_tags"]) == sorted(form["ner_tags"])
