"""`--student teacher:N`: students made of the fine-tuned teacher's own layers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    BertConfig,
    BertForTokenClassification,
    LayoutLMv3ForTokenClassification,
    MPNetConfig,
    MPNetForTokenClassification,
    RobertaConfig,
    RobertaForTokenClassification,
)

from distill.builders import tiny_student, tiny_teacher
from distill.errors import DistillError
from distill.models import Bundle
from distill.predict import Predictor, onnx_predictor
from distill.schema import FUNSD_LABELS
from distill.student_spec import evenly_spaced, parse_spec
from distill.training.teacher_init import teacher_student
from distill.windows import pad_batch
from export import onnx as export_cli
from tests.conftest import REPO, run_cli
from tests.test_students import SMALL, WORDS, tiny_bert, tiny_checkpoint

WORDS_IN_FORM = ["Date:", "12/03/1998", "Name:", "John", "Smith", "Total", "Amount"]
BOXES = [[60 * i, 40 * i, 60 * i + 50, 40 * i + 30] for i in range(len(WORDS_IN_FORM))]


def four_layer_layoutlmv3() -> Bundle:
    tiny = tiny_teacher(WORDS, FUNSD_LABELS)
    config = tiny.model.config
    config.num_hidden_layers = 4
    torch.manual_seed(0)
    return Bundle(LayoutLMv3ForTokenClassification(config), tiny.tokenizer, tiny.image_processor)


def four_layer_bert() -> Bundle:
    tokenizer = tiny_student(WORDS, FUNSD_LABELS).tokenizer
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, **FUNSD_LABELS.model_kwargs())  # fmt: skip
    torch.manual_seed(0)
    return Bundle(BertForTokenClassification(config), tokenizer)


def batch_of(bundle: Bundle) -> dict[str, torch.Tensor]:
    windows = bundle.encoder(64, 16).encode_form(WORDS_IN_FORM, BOXES, image=None)
    batch = pad_batch(windows, bundle.tokenizer.pad_token_id)
    names = ["input_ids", "attention_mask", "bbox", "pixel_values"]
    if bundle.model_type != "layoutlmv3":
        names.remove("bbox")
    return {k: torch.from_numpy(batch[k]) for k in names if k in batch}


def teacher_blocks(teacher: Bundle, inputs: dict[str, torch.Tensor], chosen: list[int]) -> list[torch.Tensor]:
    """The teacher's embeddings, then its chosen blocks applied one after another, then its classifier.

    Independent of the student: the teacher's own forward is hooked once to catch what its first
    block is called with (the mask, LayoutLMv3's relative biases), then the chosen blocks are
    called by hand on the teacher's own embeddings.
    """
    layers = teacher.model.base_model.encoder.layer
    caught: dict[str, object] = {}

    def catch(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        caught.setdefault("call", (args, kwargs))

    handle = layers[0].register_forward_pre_hook(catch, with_kwargs=True)
    with torch.no_grad():
        out = teacher.model.eval()(**inputs, output_hidden_states=True)
    handle.remove()
    args, kwargs = caught["call"]
    hidden = [out.hidden_states[0]]
    with torch.no_grad():
        for j in chosen:
            hidden.append(layers[j](hidden[-1], *args[1:], **kwargs)[0])
        hidden.append(teacher.model.classifier(hidden[-1]))  # eval: no dropout
    return hidden


@pytest.mark.parametrize(
    "make, image", [(four_layer_layoutlmv3, True), (four_layer_layoutlmv3, False), (four_layer_bert, False)]
)
@pytest.mark.parametrize("spec, chosen", [("teacher:2", [0, 2]), ("teacher:1,3", [1, 3])])
def test_teacher_n_copies_exactly_the_chosen_layers(make, image: bool, spec: str, chosen: list[int]) -> None:
    teacher = make()
    student, kept = teacher_student(spec, teacher, image=image)
    assert kept == chosen and student.model.config.num_hidden_layers == len(chosen)
    assert type(student.model) is type(teacher.model) and student.tokenizer is teacher.tokenizer
    assert (student.image_processor is not None) == image
    inputs = batch_of(teacher if image else student)  # no image: the teacher runs text + layout too
    expected = teacher_blocks(teacher, inputs, chosen)
    with torch.no_grad():
        out = student.model.eval()(**inputs, output_hidden_states=True)
    assert len(out.hidden_states) == len(chosen) + 1
    for i, (ours, theirs) in enumerate(zip(out.hidden_states, expected, strict=False)):
        torch.testing.assert_close(ours, theirs, msg=f"hidden state {i}")
    tokens = inputs["input_ids"].shape[1]
    torch.testing.assert_close(out.logits, expected[-1][:, :tokens])


def test_spacing_and_spec_parsing() -> None:
    assert evenly_spaced(6, 12) == [0, 2, 4, 6, 8, 10]
    assert evenly_spaced(4, 12) == [0, 3, 6, 9]
    assert evenly_spaced(3, 3) == [0, 1, 2]
    assert parse_spec("teacher:0,3,6,9").chosen(12) == [0, 3, 6, 9]
    for bad, layers in (("teacher:13", 12), ("teacher:3,1", 12), ("teacher:0,12", 12), ("teacher:x", 12)):
        with pytest.raises(DistillError):
            parse_spec(bad).chosen(layers)


def test_a_teacher_n_student_trains_exports_every_variant_with_parity_and_predicts(tmp_path: Path) -> None:
    args = [*SMALL, "--student", "teacher:1", "--output-dir", "run"]
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    record = metrics["models"]["student"]
    assert record["teacher_layers"] == [0] and record["image"] is False and record["distilled"] is True
    assert record["params"] < metrics["models"]["teacher"]["params"]
    config = json.loads((run / "student" / "config.json").read_text())
    assert config["model_type"] == "layoutlmv3" and config["num_hidden_layers"] == 1
    assert config["visual_embed"] is False
    torch_preds = Predictor.from_dir(run / "student", 128, 32).predict(WORDS_IN_FORM, BOXES)
    assert [p.word for p in torch_preds] == WORDS_IN_FORM
    fast = ["--latency-repeats", "2", "--parity-windows", "16", "--calibration-windows", "8"]
    reports = tmp_path / "reports"
    assert (
        export_cli.main(["--run-dir", str(run), "--models", "student", "--report-dir", str(reports), *fast])
        == 0
    )
    entry = json.loads((run / "onnx" / "manifest.json").read_text())["models"]["student"]
    assert set(entry["variants"]) == set(export_cli.VARIANTS)
    fp32 = entry["variants"]["fp32"]
    assert fp32["parity"]["max_abs_diff"] <= 1e-4 and fp32["parity"]["argmax_agreement"] == 1.0
    onnx_preds = onnx_predictor(run / "onnx" / "student" / "fp32", 128, 32).predict(WORDS_IN_FORM, BOXES)
    assert [p.label for p in onnx_preds] == [p.label for p in torch_preds]


def test_teacher_n_needs_one_teacher_and_refuses_student_layout(tmp_path: Path) -> None:
    proc = run_cli(["-m", "distill.train", *SMALL, "--student", "teacher:1", "--student-layout"], cwd=tmp_path,
                   check=False)  # fmt: skip
    assert proc.returncode == 2 and "teacher's layout" in proc.stderr
    proc = run_cli(["-m", "distill.train", *SMALL, "--student", "teacher:1", "--stage", "student", "--alpha", "0",
                    "--output-dir", "r"], cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode == 2 and "built from the fine-tuned teacher" in proc.stderr, proc.stderr
    # More layers than the teacher (the tiny one has 2) is refused when the run is resolved: before
    # the teacher trains, with nothing written.
    proc = run_cli(["-m", "distill.train", *SMALL, "--student", "teacher:3", "--output-dir", "r3"], cwd=tmp_path,
                   check=False)  # fmt: skip
    assert proc.returncode == 2 and "choose 1 to 2 of the teacher's layers" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "r3").exists()


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_a_teacher_n_layoutlmv3_student_distils_layer_to_layer_under_torchrun(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [*SMALL, "--student", "teacher:1", "--hidden-weight", "1", "--attention-weight", "1",
            "--batch-size", "2", "--max-steps", "2", "--no-baseline", "--student-image"]  # fmt: skip
    cmd = ["torchrun", "--nproc_per_node", "2", "-m", "distill.train", *args, "--output-dir", "ddp"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["models"]["student"]
    assert record["world_size"] == 2 and record["train_steps"] == 2 and record["image"] is True
    assert {m["feature"] for m in record["intermediate_matches"]} == {"hidden", "attention"}
    assert not any("distill_" in k for k in load_file(tmp_path / "ddp" / "student" / "model.safetensors"))


def test_a_saved_teacher_n_student_holds_the_teachers_layer_and_classifier(tmp_path: Path) -> None:
    """teacher:1 of the tiny teacher's 2 layers keeps layer 0 (a learning rate of 1e-12 keeps it as copied)."""
    args = [*SMALL, "--student", "teacher:1", "--max-steps", "1", "--no-baseline", "--alpha", "0",
            "--student-lr", "1e-12", "--output-dir", "run"]  # fmt: skip
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    teacher = load_file(tmp_path / "run" / "teacher" / "model.safetensors")
    student = load_file(tmp_path / "run" / "student" / "model.safetensors")
    key = "layoutlmv3.encoder.layer.0.attention.self.query.weight"
    np.testing.assert_allclose(student[key].numpy(), teacher[key].numpy(), atol=1e-6)
    assert "layoutlmv3.encoder.layer.1.attention.self.query.weight" not in student
    np.testing.assert_allclose(
        student["classifier.weight"].numpy(), teacher["classifier.weight"].numpy(), atol=1e-6
    )


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_a_teacher_n_student_of_a_layoutlmv3_built_from_a_text_encoder_trains_under_torchrun(
    tmp_path: Path,
) -> None:
    bert = tiny_bert(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [*SMALL, "--teacher", str(bert), "--no-teacher-image", "--student", "teacher:1", "--hidden-weight",
            "1", "--batch-size", "2", "--max-steps", "2", "--output-dir", "ddp"]  # fmt: skip
    proc = subprocess.run(["torchrun", "--nproc_per_node", "2", "-m", "distill.train", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    models = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["models"]
    assert models["teacher"]["model_type"] == models["student"]["model_type"] == "layoutlmv3"
    assert all(models[m]["world_size"] == 2 for m in ("teacher", "student", "student-baseline"))


@pytest.mark.parametrize(
    "classes", [(MPNetConfig, MPNetForTokenClassification), (RobertaConfig, RobertaForTokenClassification)]
)
def test_a_teacher_n_student_of_a_text_encoder_fine_tuned_as_is(tmp_path: Path, classes: tuple) -> None:
    teacher = tiny_checkpoint(tmp_path, *classes, max_positions=514)
    args = [*SMALL, "--teacher", str(teacher), "--teacher-as-is", "--student", "teacher:1", "--hidden-weight",
            "1", "--max-steps", "2", "--no-baseline", "--output-dir", "run"]  # fmt: skip
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    run = tmp_path / "run"
    config = json.loads((run / "student" / "config.json").read_text())
    assert config["model_type"] == classes[0].model_type and config["num_hidden_layers"] == 1
    preds = Predictor.from_dir(run / "student", 128, 32).predict(WORDS_IN_FORM)
    assert [p.word for p in preds] == WORDS_IN_FORM
