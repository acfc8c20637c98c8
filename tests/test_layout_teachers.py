"""LayoutLM (v1) and LiLT (MIT-licensed layout models) as first-class teachers and teacher:N sources."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    LayoutLMConfig,
    LayoutLMForTokenClassification,
    LiltConfig,
    LiltForTokenClassification,
    RobertaTokenizerFast,
)

from distill.builders import tiny_student
from distill.predict import Predictor, onnx_predictor
from distill.schema import FUNSD_LABELS
from export import onnx as export_cli
from tests.conftest import run_cli
from tests.test_students import SMALL, WORDS

WORDS_IN_FORM = ["Date:", "12/03/1998", "Name:", "John"]
BOXES = [[10, 10, 90, 30], [100, 10, 180, 30], [10, 50, 90, 70], [100, 50, 180, 70]]
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def tiny_lilt(tmp_path: Path) -> Path:
    """LiLT with RoBERTa's tokenizer kind (byte-level BPE), as SCUT-DLVCLab/lilt-roberta-en-base has."""
    with tempfile.TemporaryDirectory() as tmp:
        bpe = ByteLevelBPETokenizer(add_prefix_space=True)
        bpe.train_from_iterator(
            WORDS, vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        )
        vocab, merges = bpe.save_model(tmp)
        tokenizer = RobertaTokenizerFast(vocab_file=vocab, merges_file=merges, add_prefix_space=True)
    # LiLT splits its 2-D embedding into six equal parts: the width must divide by 6 (768 does).
    sizes = {**SIZES, "hidden_size": 48, "intermediate_size": 96}
    config = LiltConfig(vocab_size=len(tokenizer), channel_shrink_ratio=4, max_position_embeddings=514,
                        pad_token_id=tokenizer.pad_token_id, **sizes)  # fmt: skip
    path = tmp_path / "tiny-lilt"
    LiltForTokenClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_layoutlm(tmp_path: Path) -> Path:
    tokenizer = tiny_student(WORDS, FUNSD_LABELS).tokenizer
    config = LayoutLMConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **SIZES)
    path = tmp_path / "tiny-layoutlm"
    LayoutLMForTokenClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("make, model_type", [(tiny_lilt, "lilt"), (tiny_layoutlm, "layoutlm")])
def test_a_layout_teacher_trains_as_it_is_and_gives_a_teacher_n_student(
    tmp_path: Path, make, model_type: str
) -> None:
    teacher = make(tmp_path)
    args = [*SMALL, "--teacher", str(teacher), "--student", "teacher:1", "--hidden-weight", "1",
            "--max-steps", "2", "--batch-size", "2", "--no-baseline", "--output-dir", "run"]  # fmt: skip
    run_cli(["-m", "distill.train", *args], cwd=tmp_path)
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())["models"]
    assert metrics["teacher"]["model_type"] == model_type, (
        "fine-tuned as it is, not wrapped into a LayoutLMv3"
    )
    assert metrics["student"]["model_type"] == model_type and metrics["student"]["teacher_layers"] == [0]
    preds = Predictor.from_dir(run / "student", 128, 32).predict(WORDS_IN_FORM, BOXES)
    assert [p.word for p in preds] == WORDS_IN_FORM
    fast = ["--latency-repeats", "1", "--parity-windows", "8", "--variants", "fp32", "--models", "student"]
    assert export_cli.main(["--run-dir", str(run), "--report-dir", str(tmp_path / "reports"), *fast]) == 0
    fp32 = json.loads((run / "onnx" / "manifest.json").read_text())["models"]["student"]["variants"]["fp32"]
    assert "bbox" in fp32["inputs"] and fp32["parity"]["argmax_agreement"] == 1.0
    onnx_preds = onnx_predictor(run / "onnx" / "student" / "fp32", 128, 32).predict(WORDS_IN_FORM, BOXES)
    assert [p.label for p in onnx_preds] == [p.label for p in preds]
