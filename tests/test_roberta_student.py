"""A RoBERTa-family student (byte-level BPE, positions numbered from padding_idx + 1) end to end.

The checkpoint is built here from a config with a byte-level BPE tokenizer trained on a few words
and saved the way the hub's roberta-base is (RobertaTokenizerFast, add_prefix_space false).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

from distill.builders import build_student, with_layout
from distill.models import load_bundle
from distill.predict import Predictor, TorchBackend
from distill.schema import FUNSD_LABELS
from distill.windows import pad_batch
from tests.conftest import run_cli

WORDS = "Date: Name Phone Company Amount Total invoice approved Reynolds Tobacco 12/03/1998".split()


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roberta")
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 20, vocab_size=300, min_frequency=1, special_tokens=specials)
    vocab, merges = bpe.save_model(str(root))
    tokenizer = RobertaTokenizerFast(vocab_file=vocab, merges_file=merges, model_max_length=512)
    assert tokenizer.add_prefix_space is False, "as the hub's roberta-base: the case that crashed"
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,  # 512 positions after the padding index, as roberta-base
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model_dir = root / "tiny-roberta"
    RobertaForMaskedLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def test_roberta_student_trains_saves_exports_and_predicts(roberta_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["-m", "distill.train", "--preset", "quickstart", "--student", str(roberta_dir)]
    args += ["--synthetic-forms", "8", "--max-words", "60", "--epochs", "1", "--no-baseline"]
    args += ["--output-dir", str(run), "--report-dir", str(tmp_path / "reports")]
    run_cli(args, cwd=tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["models"]["student"]["model_type"] == "roberta"
    assert load_bundle(run / "student").tokenizer.add_prefix_space, "the saved student takes pre-split words"

    run_cli(
        ["-m", "export.onnx", "--run-dir", str(run), "--models", "student", "--variants", "fp32"]
        + ["--report-dir", str(tmp_path / "reports")],
        cwd=tmp_path,
    )
    manifest = json.loads((run / "onnx" / "manifest.json").read_text())
    assert "student" in json.dumps(manifest) and (run / "onnx" / "student" / "fp32" / "model.onnx").is_file()

    from distill.predict import onnx_predictor

    words = ["Date:", "12/03/1998", "Name", "Reynolds", "Tobacco"]
    torch_preds = Predictor.from_dir(run / "student", 128, 32).predict(words)
    onnx_preds = onnx_predictor(run / "onnx" / "student" / "fp32", 128, 32).predict(words)
    # A one-epoch student may give every word one label, so labels alone would agree by default:
    # the probabilities must agree too.
    assert len(torch_preds) == len(words) and [p.label for p in onnx_preds] == [p.label for p in torch_preds]
    np.testing.assert_allclose([p.score for p in onnx_preds], [p.score for p in torch_preds], atol=1e-4)


def test_roberta_layout_twin_equals_the_text_model_at_start(roberta_dir: Path) -> None:
    text = build_student(str(roberta_dir), [], FUNSD_LABELS)
    layout = with_layout(text, box_init="zero")
    words = WORDS * 3
    boxes = [[10 * i, 20, 10 * i + 8, 30] for i in range(len(words))]
    text_batch = pad_batch(text.encoder(128, 32).encode_form(words, None), text.tokenizer.pad_token_id)
    layout_batch = pad_batch(layout.encoder(128, 32).encode_form(words, boxes), text.tokenizer.pad_token_id)
    np.testing.assert_array_equal(text_batch["input_ids"], layout_batch["input_ids"])
    text_logits = TorchBackend(text.model)(text_batch)
    layout_logits = TorchBackend(layout.model)(layout_batch)
    np.testing.assert_allclose(layout_logits, text_logits, atol=1e-5)
    # LayoutLM numbers positions from 0: the table is RoBERTa's without its first padding_idx + 1 rows.
    assert layout.model.config.max_position_embeddings == 512
