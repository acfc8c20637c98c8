"""Teacher options for rare types and cost: balanced / focal loss, a learning spatial bias, no image path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import BertConfig, BertForTokenClassification, MPNetConfig, MPNetForTokenClassification

from distill.builders import layoutlmv3_from_text
from distill.models import load_bundle
from distill.predict import Predictor, TorchBackend, onnx_predictor
from distill.terms.label_losses import balanced_weights, tag_counts, token_loss
from distill.training.attention_bias import BIAS_TABLES, learn_attention_bias
from distill.windows import pad_batch
from export import onnx as export_cli
from tests.conftest import REPO, run_cli
from tests.test_students import SMALL, load_bundle_from, tiny_bert, tiny_checkpoint

STEPS = ["--stage", "teacher", "--max-steps", "4", "--batch-size", "4", "--teacher-lr", "1e-2"]


def test_balanced_weights_average_one_over_the_positions_and_skip_unseen_tags() -> None:
    windows = [{"labels": np.array([-100, 0, 0, 0, 1, -100])}, {"labels": np.array([0, 0, 2, 1])}]
    counts = tag_counts(windows, 4)
    assert counts.tolist() == [5, 2, 1, 0]
    weights = balanced_weights(counts)
    assert weights[3] == 0 and weights[2] > weights[1] > weights[0]
    np.testing.assert_allclose((weights * counts).sum() / counts.sum(), 1.0)


def test_focal_loss_is_cross_entropy_at_gamma_zero_and_discounts_easy_positions() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4)
    labels = torch.tensor([[0, 1, -100, 2, 3], [3, -100, 0, 0, 1]])
    ce = F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(token_loss(logits, labels, "focal", gamma=0.0), ce)
    torch.testing.assert_close(token_loss(logits, labels, "ce"), ce)
    assert token_loss(logits, labels, "focal", gamma=2.0) < ce
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    weighted = F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1), weight=weights, ignore_index=-100)
    torch.testing.assert_close(token_loss(logits, labels, "balanced", weights), weighted)
    torch.testing.assert_close(token_loss(logits, labels, "balanced-focal", weights, gamma=0.0), weighted)


@pytest.mark.parametrize(
    "classes", [(BertConfig, BertForTokenClassification), (MPNetConfig, MPNetForTokenClassification)]
)
def test_a_layoutlmv3_built_from_a_text_encoder_starts_as_that_encoder(
    tmp_path: Path, classes: tuple
) -> None:
    """Every weight maps (MPNet's attention names and relative bias, BERT's segment embedding):
    with zero boxes and spatial bias the built teacher computes what the text encoder computes."""
    text = load_bundle_from(tiny_checkpoint(tmp_path, *classes))
    with torch.no_grad():
        for parameter in text.model.parameters():  # nothing left at an initialiser's zero or one
            parameter.add_(torch.randn_like(parameter) * 0.05)
    built = layoutlmv3_from_text(text, image=False)
    words = ["Date:", "12/03/1998", "Name:", "John", "Smith"] * 4
    boxes = [[40 * i, 30 * i, 40 * i + 30, 30 * i + 20] for i in range(len(words))]
    batches = [pad_batch(b.encoder(64, 16).encode_form(words, boxes), 0) for b in (text, built)]
    theirs, ours = (TorchBackend(b.model)(batch) for b, batch in zip((text, built), batches, strict=True))
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-4)


def test_the_bias_lookup_without_no_grad_computes_what_upstream_does(tmp_path: Path) -> None:
    teacher = layoutlmv3_from_text(load_bundle_from(tiny_bert(tmp_path)), image=False)
    with torch.no_grad():
        for name in BIAS_TABLES:  # non-zero, so the comparison means something
            getattr(teacher.model.layoutlmv3.encoder, name).weight.normal_()
    ids = torch.randint(5, teacher.model.config.vocab_size, (2, 12))
    bbox = torch.sort(torch.randint(0, 1000, (2, 12, 4)), dim=-1).values
    teacher.model.eval()
    before = teacher.model(input_ids=ids, bbox=bbox).logits
    assert learn_attention_bias(teacher.model)
    after = teacher.model(input_ids=ids, bbox=bbox).logits
    torch.testing.assert_close(after, before)
    after.sum().backward()
    for name in BIAS_TABLES:
        assert getattr(teacher.model.layoutlmv3.encoder, name).weight.grad.abs().sum() > 0, name


def test_a_layoutlmv3_teacher_built_from_a_text_encoder_learns_its_spatial_bias(tmp_path: Path) -> None:
    bert = tiny_bert(tmp_path)
    built = layoutlmv3_from_text(load_bundle_from(bert))
    for name in BIAS_TABLES:
        assert getattr(built.model.layoutlmv3.encoder, name).weight.abs().sum() == 0, "starts at zero"
    run_cli(
        ["-m", "distill.train", *SMALL, "--teacher", str(bert), *STEPS, "--output-dir", "run"], cwd=tmp_path
    )
    weights = load_file(tmp_path / "run" / "teacher" / "model.safetensors")
    for name in BIAS_TABLES:
        assert float(weights[f"layoutlmv3.encoder.{name}.weight"].abs().max()) > 1e-4, f"{name} still zero"


def test_a_text_and_layout_teacher_with_balanced_loss_trains_exports_and_predicts(tmp_path: Path) -> None:
    bert = tiny_bert(tmp_path)
    args = [*SMALL, "--teacher", str(bert), *STEPS, "--no-teacher-image", "--teacher-loss", "balanced"]
    run_cli(["-m", "distill.train", *args, "--output-dir", "run"], cwd=tmp_path)
    run = tmp_path / "run"
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["teacher_image"] is False and config["teacher_loss"] == "balanced"
    loss = json.loads((run / "metrics.json").read_text())["models"]["teacher"]["loss"]
    assert loss["kind"] == "balanced" and loss["class_weights"]["O"] < loss["class_weights"]["B-HEADER"]
    assert loss["terms"] == [{"term": "balanced_labels", "weight": 1.0}], "the teacher's declared loss"
    assert "# teacher's loss = 1 · class-weighted CE(labels)" in (run / "config.toml").read_text()
    assert (
        "The teacher was fine-tuned on loss = 1 · class-weighted CE"
        in (tmp_path / "reports" / "training.md").read_text()
    )
    saved = json.loads((run / "teacher" / "config.json").read_text())
    assert saved["visual_embed"] is False and saved["architectures"] == ["LayoutLMv3ForTokenClassification"]
    assert not (run / "teacher" / "preprocessor_config.json").exists()
    bundle = load_bundle(run / "teacher")
    assert bundle.image_processor is None
    assert "pixel_values" not in TorchBackend(bundle.model).input_names
    words, boxes = ["Name:", "John"], [[10, 10, 90, 30], [100, 10, 180, 30]]
    torch_preds = Predictor.from_dir(run / "teacher", 128, 32).predict(words, boxes)
    assert [p.word for p in torch_preds] == words
    reports = tmp_path / "reports"
    fast = ["--latency-repeats", "1", "--parity-windows", "8", "--variants", "fp32", "--models", "teacher"]
    assert export_cli.main(["--run-dir", str(run), "--report-dir", str(reports), *fast]) == 0
    manifest = json.loads((run / "onnx" / "manifest.json").read_text())
    fp32 = manifest["models"]["teacher"]["variants"]["fp32"]
    assert "pixel_values" not in fp32["inputs"], fp32["inputs"]
    onnx_preds = onnx_predictor(run / "onnx" / "teacher" / "fp32", 128, 32).predict(words, boxes)
    assert [p.label for p in onnx_preds] == [p.label for p in torch_preds]


@pytest.mark.parametrize("flag", [["--teacher-loss", "dice"], ["--focal-gamma", "-1"]])
def test_bad_loss_options_are_refused_in_one_line(tmp_path: Path, flag: list[str]) -> None:
    proc = run_cli(["-m", "distill.train", *SMALL, *flag], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
@pytest.mark.parametrize("image", ["--teacher-image", "--no-teacher-image"])
def test_a_teacher_built_from_a_text_encoder_trains_under_torchrun(tmp_path: Path, image: str) -> None:
    """Every bias table now gets a gradient: DDP without find_unused_parameters must still run."""
    bert = tiny_bert(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [*SMALL, "--teacher", str(bert), *STEPS, image, "--batch-size", "2", "--max-steps", "2"]
    cmd = ["torchrun", "--nproc_per_node", "2", "-m", "distill.train", *args, "--output-dir", "ddp"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["models"]["teacher"]
    assert record["world_size"] == 2 and record["train_steps"] == 2
    weights = load_file(tmp_path / "ddp" / "teacher" / "model.safetensors")
    assert float(weights["layoutlmv3.encoder.rel_pos_x_bias.weight"].abs().max()) > 0


def test_box_lr_also_speeds_the_built_teachers_spatial_bias_not_its_1d_bias(tmp_path: Path) -> None:
    from transformers import Trainer, TrainingArguments

    from distill.training.fit import optimizer_with_box_lr

    model = layoutlmv3_from_text(load_bundle_from(tiny_bert(tmp_path)), image=False).model
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-4, report_to=[])
    optimizer = optimizer_with_box_lr(Trainer(model=model, args=args), box_lr=3e-3)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    encoder = model.layoutlmv3.encoder
    assert lr_of[id(encoder.rel_pos_x_bias.weight)] == lr_of[id(encoder.rel_pos_y_bias.weight)] == 3e-3
    assert lr_of[id(encoder.rel_pos_bias.weight)] == 1e-4
    assert lr_of[id(model.layoutlmv3.embeddings.x_position_embeddings.weight)] == 3e-3
