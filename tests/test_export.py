"""`python -m export.onnx` end to end on a tiny run: every variant written, loadable, validated, scored.

The run is built with the models API (untrained tiny teacher, DistilBERT student and a LayoutLM
layout-aware student as `student-baseline`) and exported once for the whole module; parity does
not need trained weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill.builders import tiny_student, tiny_teacher, with_layout
from distill.config import TrainConfig
from distill.data.run_data import load_run_data
from distill.models import load_bundle
from distill.predict import OrtBackend, OvBackend, Predictor, TorchBackend, load_predictor, onnx_predictor
from distill.schema import FUNSD_LABELS
from distill.windows import pad_batch
from export import onnx as export_cli
from export import validate
from export.export_types import VARIANTS

ONNX_VARIANTS = [v for v in VARIANTS if not v.startswith("openvino")]
OPENVINO_VARIANTS = [v for v in VARIANTS if v.startswith("openvino")]

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
    out, err = io.StringIO(), io.StringIO()
    # What the user sees: the printed lines, and the warnings the filters in force let through (recorded
    # here: pytest would collect them out of sight).
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with warnings.catch_warnings(record=True) as seen:
            code = export_cli.main(["--run-dir", str(run), "--report-dir", str(reports), *FAST])
    assert code == 0, err.getvalue()[-3000:]
    manifest = json.loads((run / "onnx" / "manifest.json").read_text())
    return {
        "manifest": manifest,
        "reports": reports,
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "warnings": seen,
    }


def test_every_variant_is_written_and_loads(run: Path, exported: dict) -> None:
    models = exported["manifest"]["models"]
    assert list(models) == ["teacher", "student", "student-baseline"]
    for name, entry in models.items():
        assert list(entry["variants"]) == list(VARIANTS)
        for variant, fig in entry["variants"].items():
            path = run / fig["path"]
            assert (path.parent / "config.json").is_file() and (
                path.parent / "tokenizer_config.json"
            ).is_file()
            if variant in OPENVINO_VARIANTS:  # OpenVINO IR: the graph and its weights beside it
                assert path == run / "onnx" / name / variant / "openvino_model.xml" and path.is_file()
                assert fig["size_bytes"] == path.stat().st_size + path.with_suffix(".bin").stat().st_size
                assert OvBackend(path).precision == fig["inference_precision"]
                continue
            assert path == run / "onnx" / name / variant / "model.onnx" and path.is_file()
            assert fig["size_bytes"] == path.stat().st_size > 0
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
    run: Path, exported: dict
) -> None:
    """Every gated variant's verdict is recomputed here on the gate's own forms (perturbed held-out
    training forms, rebuilt independently) and its test figures on the test split: an export whose gate
    judged on the test split (or whose test figures came from the gate) disagrees with both."""
    manifest = exported["manifest"]
    gate = manifest["gate"]
    assert gate["forms"] > 0 and "perturbed copies of" in gate["split"]
    assert "training forms held out of calibration" in gate["split"]
    assert gate["int8_agreement_floor"] == 0.90 and gate["fp16_agreement_floor"] == 0.99
    data = export_cli.load_eval_data(run, None)
    test_words = sum(len(f["tokens"]) for f in data.test_forms)
    gate_words = sum(len(f["tokens"]) for f in data.gate_forms)
    assert gate_words != test_words  # else the word counts below could not tell the two apart
    assert {tuple(f["tokens"]) for f in data.gate_forms}.isdisjoint(
        tuple(f["tokens"]) for f in data.test_forms
    )
    config = TrainConfig.read(run / "config.toml")
    for name, entry in manifest["models"].items():
        bundle = load_bundle(run / name)
        encoder = bundle.encoder(config.max_length, config.stride)
        reference = validate.word_logits(encoder, TorchBackend(bundle.model), data.gate_forms, 8)
        reference_f1 = validate.score_logits(data.gate_forms, reference, data.labels)["f1"]
        assert entry["pytorch"]["gate_f1"] == pytest.approx(reference_f1, abs=1e-9)
        for variant in ("int8", "openvino", "openvino-int8"):
            fig = entry["variants"][variant]
            backend = (
                OvBackend(run / fig["path"])
                if variant.startswith("openvino")
                else OrtBackend(run / fig["path"])
            )
            words = validate.word_logits(encoder, backend, data.gate_forms, 8)
            agreement, counted = validate.word_agreement(reference, words)
            assert fig["gate"]["words"] == counted == gate_words, (name, variant)
            assert fig["gate"]["word_agreement"] == pytest.approx(agreement, abs=1e-9), (name, variant)
            assert fig["gate"]["f1"] == pytest.approx(
                validate.score_logits(data.gate_forms, words, data.labels)["f1"], abs=1e-9
            )
            # ... and the test split, once, for the variant kept: its own words, its own F1.
            assert fig["words"] == test_words and fig["metrics"]["f1"] == fig["f1"]
            test_f1 = validate.score(encoder, backend, data.test_forms, 8, data.labels)["f1"]
            assert fig["f1"] == pytest.approx(test_f1, abs=1e-9), (name, variant)
        int8 = entry["variants"]["int8"]
        kept = next(a for a in int8["attempts"] if a["name"] == int8["method"])
        assert kept["f1"] == int8["gate"]["f1"]
        assert entry["variants"]["fp16"]["gate"]["agreement_floor"] == 0.99


def test_report_goes_to_the_report_dir(exported: dict) -> None:
    text = (exported["reports"] / "export.md").read_text()
    for heading in ("## teacher", "## student", "## student-baseline", "int8 attempts", "Fusions:"):
        assert heading in text
    # The command as it ran, options included, so the report can be regenerated exactly; the run
    # directory (absolute, outside the working directory) as the placeholder RUN, explained.
    assert "Written by `python -m export.onnx --run-dir RUN --report-dir " in text
    run = Path(exported["manifest"]["run"])
    assert (
        "; RUN: the run directory below; REPORT_DIR: where this report went." in text
        and f"Run `RUN` (a run directory named `{run.name}`)" in text
    )
    assert str(run) not in text, "no path of the writer's machine"
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

    for variant in ONNX_VARIANTS:
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


def test_the_export_prints_no_library_noise_and_names_no_none(exported: dict) -> None:
    """onnxruntime's shape-inference print (LayoutLMv3) and the tracer's constant-tensor warning are gone;
    a recommendation that does not exist reads "none", never Python's None."""
    printed = exported["stdout"] + exported["stderr"]
    assert "failed in shape inference" not in printed
    # Tracer warnings raised inside torch itself are ignored by torch's own filter outside pytest.
    tracer = [
        f"{w.filename}: {w.message}"
        for w in exported["warnings"]
        if issubclass(w.category, torch.jit.TracerWarning) and "/torch/" not in w.filename
    ]
    assert not tracer, tracer
    assert "None" not in (exported["reports"] / "export.md").read_text()
    manifest = json.loads(json.dumps(exported["manifest"]))
    manifest["models"]["student"].update(recommended_gpu=None, recommended_gpu_reason="fp16 not exported")
    assert "on GPU: none (fp16 not exported)" in export_cli.report.render(manifest)


def test_openvino_variants_predict_the_word_labels_of_ort_fp32_within_the_gate(
    run: Path, exported: dict
) -> None:
    """Through the one prediction API (load_predictor): an OpenVINO IR directory serves like an ONNX one."""
    forms = export_cli.load_eval_data(run, None).test_forms
    for name, entry in exported["manifest"]["models"].items():
        reference = load_predictor(run / "onnx" / name / "fp32", 128, 32)
        want = [p.label for f in forms for p in reference.predict(f["tokens"], f["bboxes"], f["image"])]
        for variant in OPENVINO_VARIANTS:
            tagger = load_predictor(run / "onnx" / name / variant, 128, 32)
            assert isinstance(tagger.backend, OvBackend)
            got = [p.label for f in forms for p in tagger.predict(f["tokens"], f["bboxes"], f["image"])]
            agreement = float(np.mean([a == b for a, b in zip(got, want, strict=True)]))
            assert agreement >= validate.INT8_AGREEMENT_FLOOR, (name, variant, agreement)
            assert entry["variants"][variant]["gate"]["passes"] == entry["variants"][variant]["meets_gate"]


def test_each_cpu_variant_records_how_its_labels_move_with_the_batch(run: Path, exported: dict) -> None:
    """Word labels at batch 1 against the export's batch, recounted here on the gate forms: the manifest
    holds the same count for every CPU variant, the recommended one included."""
    data = export_cli.load_eval_data(run, None)
    for name, entry in exported["manifest"]["models"].items():
        encoder = load_bundle(run / name).encoder(128, 32)
        assert entry["recommended_cpu"] in entry["variants"]
        for variant in ("fp32", "fp32-optimized", "int8", "openvino", "openvino-int8"):
            fig = entry["variants"][variant]
            backend = (
                OvBackend(run / fig["path"])
                if variant.startswith("openvino")
                else OrtBackend(run / fig["path"])
            )
            batched = validate.word_logits(encoder, backend, data.gate_forms, 8)
            alone = validate.word_logits(encoder, backend, data.gate_forms, 1)
            changed = sum(
                int((a.argmax(-1) != b.argmax(-1)).sum()) for a, b in zip(alone, batched, strict=True)
            )
            found = fig["batch_sensitivity"]
            assert (found["words_changed"], found["invariant"], found["batch"]) == (changed, changed == 0, 8)
            assert found["words"] == sum(len(f["tokens"]) for f in data.gate_forms)


def test_the_recommendation_is_the_measured_choice_among_gated_variants(exported: dict) -> None:
    from export.recommend import recommend

    for name, entry in exported["manifest"]["models"].items():
        choice = entry["recommended_cpu_choice"]
        timed = {c["variant"]: c for c in choice["candidates"]}
        assert set(timed) == {"fp32", "fp32-optimized", "int8", "openvino", "openvino-int8"}
        for variant, candidate in timed.items():
            fig = entry["variants"][variant]
            if candidate["gated"]:  # timed interleaved with the others, at the export's batch and alone
                assert len(fig["timing"]["shapes"]) == 2 and fig["timing"]["interleaved_with"]
                assert candidate["timings_ms"] == {
                    s: t["median_ms"] for s, t in fig["timing"]["shapes"].items()
                }
        assert timed[entry["recommended_cpu"]]["gated"]
        assert recommend(entry["variants"], 1.0)["recommended_cpu"] == entry["recommended_cpu"]
        assert exported["manifest"]["recommended"]["cpu"][name] == entry["recommended_cpu"]


def test_the_student_openvino_variant_loads_with_optimum_intel(run: Path, exported: dict) -> None:
    from optimum.intel import OVModelForTokenClassification
    from transformers import AutoTokenizer, pipeline

    for variant in OPENVINO_VARIANTS:
        folder = run / "onnx" / "student" / variant
        model = OVModelForTokenClassification.from_pretrained(folder, compile=True)
        tagger = pipeline(
            "token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder)
        )
        tags = tagger("Name: John Smith Date: 12/03/1998")
        assert tags and all(t["entity"] in model.config.label2id for t in tags)


class _Flipped:
    """A backend whose logits are negated (argmax moved) where `where(batch)` says: a gate test's candidate."""

    def __init__(self, backend: TorchBackend, where) -> None:  # noqa: ANN001
        self.backend, self.where, self.input_names = backend, where, backend.input_names

    def __call__(self, batch: dict) -> np.ndarray:
        logits = self.backend(batch)
        flip = self.where(batch) & batch["attention_mask"].astype(bool)
        logits[flip] = -logits[flip]
        return logits


def test_the_gate_counts_agreement_on_words_not_on_special_or_continuation_tokens(
    run: Path, exported: dict
) -> None:
    """A candidate that disagrees only where no prediction reads ([CLS], [SEP], continuation
    sub-tokens) agrees on every word and passes; one that moves a fifth of the words fails."""
    from export.export_types import ExportOptions
    from export.pipeline import ModelExport

    data = export_cli.load_eval_data(run, None)
    model = ModelExport("student", run / "student", run, data, ExportOptions(parity_windows=16))
    model.pytorch_figures()
    off_words = _Flipped(model.torch, lambda b: b["word_index"] < 0)
    verdict = model.gate(off_words, "flipped off words", 1.0, validate.INT8_AGREEMENT_FLOOR)
    assert verdict["word_agreement"] == 1.0 and verdict["passes"], verdict
    assert verdict["words"] == sum(len(f["tokens"]) for f in data.gate_forms)
    on_words = _Flipped(model.torch, lambda b: (b["word_index"] >= 0) & (b["word_index"] % 5 == 0))
    verdict = model.gate(on_words, "flipped words", 100.0, validate.INT8_AGREEMENT_FLOOR)
    assert not verdict["passes"] and "word agreement" in verdict["why_not"]
    assert 0.75 < verdict["word_agreement"] < 0.85


def test_the_openvino_ladder_tries_nncf_mitigations_in_order_until_the_gate_passes(
    run: Path, exported: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain NNCF recipe and the ignored scope made to fail the gate: accuracy control runs (for real)
    and is kept; every rung is recorded with what it did."""
    from export.export_types import ExportOptions
    from export.pipeline import ModelExport

    data = export_cli.load_eval_data(run, None)
    model = ModelExport(
        "student", run / "student", run, data, ExportOptions(parity_windows=16, calibration_windows=8)
    )
    model.pytorch_figures()
    real_gate = ModelExport.gate_with_words

    def gate(self: ModelExport, backend, label: str, budget: float, floor: float):  # noqa: ANN001
        verdict, words = real_gate(self, backend, label, budget, floor)
        if label.endswith(("nncf-transformer", "nncf-keep-sensitive")):
            verdict = {**verdict, "passes": False, "why_not": "failed on purpose by the test"}
        return verdict, words

    monkeypatch.setattr(ModelExport, "gate_with_words", gate)
    (tmp_path / "scratch").mkdir()
    fig = model.openvino_int8(
        run / "onnx/student/fp32",
        run / "onnx/student/openvino/openvino_model.xml",
        tmp_path / "out",
        tmp_path / "scratch",
    )
    attempts = {a["name"]: a for a in fig["attempts"]}
    assert list(attempts) == ["nncf-transformer", "nncf-keep-sensitive", "nncf-accuracy-control"]
    assert fig["method"] == "nncf-accuracy-control" and fig["meets_gate"]
    assert not attempts["nncf-transformer"]["meets_budget"] and attempts["nncf-transformer"]["f1"] is not None
    kept_float = attempts["nncf-keep-sensitive"]["details"]["layers_kept_float"]
    assert len(kept_float) == 3 and sum("out_lin" in n for n in kept_float) == 2  # + the classifier
    assert attempts["nncf-accuracy-control"]["details"]["validation_forms"] == len(data.validation_forms) > 0
    assert (tmp_path / "out" / "openvino_model.xml").is_file() and (
        tmp_path / "out" / "config.json"
    ).is_file()


def test_a_holdout_run_is_never_called_the_test_split(run: Path, exported: dict, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("onnx"))
    dataclasses.replace(TrainConfig.read(run / "config.toml"), holdout_forms=4).write(copy / "config.toml")
    args = [
        "--run-dir",
        str(copy),
        "--models",
        "student",
        "--variants",
        "fp32,openvino",
        "--report-dir",
        str(tmp_path),
    ]
    assert export_cli.main([*args, *FAST]) == 0
    manifest = json.loads((copy / "onnx" / "manifest.json").read_text())
    assert manifest["eval"]["split"] == "held-out" and manifest["eval"]["forms"] == 4
    assert "4 forms, --holdout-forms 4" in manifest["eval"]["description"]
    assert "test split" not in json.dumps(manifest["eval"]) + json.dumps(manifest["gate"])
    text = (tmp_path / "export.md").read_text()
    assert "test split" not in text and "held-out training forms (4 forms, --holdout-forms 4)" in text


def test_a_run_without_its_student_says_which_models_were_found_and_expected(
    run: Path, exported: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("onnx", "student"))
    args = ["--run-dir", str(copy), "--variants", "fp32", "--report-dir", str(tmp_path), *FAST]
    assert export_cli.main(args) == 0
    captured = capsys.readouterr()
    (warning,) = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert (
        "has teacher, student-baseline" in warning and "expect teacher, student, student-baseline" in warning
    )
    assert "student missing" in warning
    assert "not exported (missing from the run): student" in captured.out
    manifest = json.loads((copy / "onnx" / "manifest.json").read_text())
    assert manifest["models_missing"] == ["student"] and list(manifest["models"]) == [
        "teacher",
        "student-baseline",
    ]
    assert "**Not exported**: student" in (tmp_path / "export.md").read_text()


def test_an_openvino_int8_no_rung_can_build_is_recorded_and_the_other_variants_stand(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Every NNCF rung's IR made unreadable after NNCF wrote it (OpenVINO's own error, as when a real-size
    LayoutLMv3's int8 IR fails constant folding): the model's other variants are exported, the failure is
    in the manifest and the report, and the variant is never recommended."""
    from export import openvino_ir

    real_quantize = openvino_ir.quantize

    def broken(attempt, fp32_ir, folder, calibration, validation):  # noqa: ANN001, ANN202
        details = real_quantize(attempt, fp32_ir, folder, calibration, validation)
        (folder / "openvino_model.xml").write_text("<net>cut short")  # what OpenVINO then cannot read
        return details

    monkeypatch.setattr(openvino_ir, "quantize", broken)
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("onnx"))
    args = ["--run-dir", str(copy), "--models", "student", "--variants", "fp32,openvino,openvino-int8",
            "--openvino-attempts", "nncf-transformer", "--report-dir", str(tmp_path), *FAST]  # fmt: skip
    assert export_cli.main(args) == 0
    out = capsys.readouterr()
    assert "warning: student: every OpenVINO int8 attempt failed: nncf-transformer:" in out.err
    entry = json.loads((copy / "onnx" / "manifest.json").read_text())["models"]["student"]
    assert list(entry["variants"]) == ["fp32", "openvino"] and entry["recommended_cpu"] != "openvino-int8"
    (attempt,) = entry["not_built"]["openvino-int8"]["attempts"]
    assert attempt["name"] == "nncf-transformer" and attempt["f1"] is None
    assert attempt["error"].startswith("openvino_model.xml: OpenVINO could not"), (
        "no scratch path: it is gone"
    )
    assert not (copy / "onnx" / "student" / "openvino-int8").exists()
    assert (
        "openvino-int8 — **not built**: student: every OpenVINO int8 attempt failed"
        in (tmp_path / "export.md").read_text()
    )
    assert "openvino-int8   not built:" in out.out
