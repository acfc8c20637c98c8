"""The FLOP counter against hand-computed figures for small configs (bench/flops.py)."""

from __future__ import annotations

from transformers import DistilBertConfig, LayoutLMConfig, LayoutLMv3Config

from bench.flops import Flops, batch_flops, max_text_length, sequence_flops, visual_patches


def distilbert(d: int = 8, f: int = 16, layers: int = 2) -> DistilBertConfig:
    return DistilBertConfig(dim=d, hidden_dim=f, n_layers=layers, n_heads=2, num_labels=7, vocab_size=50)


def test_text_encoder_formula_by_hand() -> None:
    flops = sequence_flops(distilbert(), length=10)
    # per token per layer: 4*8*8 + 2*8*16 = 512 multiply-adds -> 2 * 10 tokens * 2 layers * 512
    assert flops.linear == 2 * 10 * 2 * 512 == 20480
    assert flops.attention == 4 * 10 * 10 * 8 * 2 == 6400  # QK^T and AV over 2 layers
    assert flops.classifier == 2 * 10 * 8 * 7 == 1120
    assert flops.patches == 0
    assert flops.total == 20480 + 6400 + 1120
    assert flops.quantisable == 20480 + 1120


def test_bert_style_names_give_the_same_count() -> None:
    """LayoutLM (BERT names: hidden_size, intermediate_size) of DistilBERT's shape counts the same."""
    layout = LayoutLMConfig(
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_labels=7,
        vocab_size=50,
    )
    assert sequence_flops(layout, 10) == sequence_flops(distilbert(), 10)


def test_layoutlmv3_adds_image_patches_and_their_cls() -> None:
    config = LayoutLMv3Config(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        coordinate_size=2,
        shape_size=4,
        input_size=32,
        patch_size=16,
        num_labels=7,
        vocab_size=50,
    )
    assert visual_patches(config) == 4  # (32 / 16)^2
    flops = sequence_flops(config, length=10)
    tokens = 10 + 4 + 1
    assert flops.linear == 2 * tokens * 1 * (4 * 16 * 16 + 2 * 16 * 32)
    assert flops.attention == 4 * tokens * tokens * 16
    assert flops.classifier == 2 * 10 * 16 * 7  # the text tokens only
    assert flops.patches == 2 * 4 * 3 * 16 * 16 * 16


def test_text_only_layoutlmv3_has_no_patches() -> None:
    config = LayoutLMv3Config(hidden_size=16, coordinate_size=2, shape_size=4, visual_embed=False)
    assert visual_patches(config) == 0


def test_batch_scales_linearly_and_flops_add() -> None:
    config = distilbert()
    one = sequence_flops(config, 12)
    assert batch_flops(config, 8, 12) == 8 * one
    assert (one + one).total == 2 * one.total
    assert Flops(1, 2, 3, 4).total == 10


def test_max_text_length_drops_roberta_style_position_offset() -> None:
    assert max_text_length(distilbert()) == 512
    v3 = LayoutLMv3Config(max_position_embeddings=514, pad_token_id=1)
    assert max_text_length(v3) == 512
