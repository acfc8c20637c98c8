"""Let LayoutLMv3's relative attention biases (1-D and spatial) learn while it trains here.

transformers reads LayoutLMv3's three bias tables (rel_pos_bias, rel_pos_x_bias, rel_pos_y_bias)
under torch.no_grad() (huggingface/transformers#30988, a training-speed fix), so fine-tuning
through transformers never changes them. Microsoft's original code (one-hot times a Linear) learns
them, and a LayoutLMv3 built here from a text encoder (models.layoutlmv3_from_text) starts with
them at zero: frozen, it would never use relative positions at all.

`learn_attention_bias` replaces the two lookups on one model instance with the same arithmetic
without no_grad. The cost, measured on one busy Zen 4 core: about 0.2 s of backward per table for
8 windows of 512 tokens (a small share of a base-size step). It is a training-time override of
instance methods, not a subclass: the saved directory stays a plain
LayoutLMv3ForTokenClassification and loads, exports and predicts through upstream code, whose
forward computes exactly the same biases.
"""

from __future__ import annotations

import types

import torch

BIAS_TABLES = ("rel_pos_bias", "rel_pos_x_bias", "rel_pos_y_bias")


def _cal_1d_pos_emb(self: torch.nn.Module, position_ids: torch.Tensor) -> torch.Tensor:
    rel_pos_mat = position_ids.unsqueeze(-2) - position_ids.unsqueeze(-1)
    rel_pos = self.relative_position_bucket(
        rel_pos_mat, num_buckets=self.rel_pos_bins, max_distance=self.max_rel_pos
    )
    return self.rel_pos_bias.weight.t()[rel_pos].permute(0, 3, 1, 2).contiguous()


def _cal_2d_pos_emb(self: torch.nn.Module, bbox: torch.Tensor) -> torch.Tensor:
    x, y = bbox[:, :, 0], bbox[:, :, 3]  # upstream's choice: left edges and bottom edges
    buckets = dict(num_buckets=self.rel_2d_pos_bins, max_distance=self.max_rel_2d_pos)
    rel_x = self.relative_position_bucket(x.unsqueeze(-2) - x.unsqueeze(-1), **buckets)
    rel_y = self.relative_position_bucket(y.unsqueeze(-2) - y.unsqueeze(-1), **buckets)
    bias_x = self.rel_pos_x_bias.weight.t()[rel_x].permute(0, 3, 1, 2)
    bias_y = self.rel_pos_y_bias.weight.t()[rel_y].permute(0, 3, 1, 2)
    return (bias_x + bias_y).contiguous()


def learn_attention_bias(model: torch.nn.Module) -> bool:
    """Give a LayoutLMv3 model's bias lookups gradients; returns whether it had any to give."""
    if model.config.model_type != "layoutlmv3":
        return False
    encoder = model.base_model.encoder
    if encoder.has_relative_attention_bias:
        encoder._cal_1d_pos_emb = types.MethodType(_cal_1d_pos_emb, encoder)
    if encoder.has_spatial_attention_bias:
        encoder._cal_2d_pos_emb = types.MethodType(_cal_2d_pos_emb, encoder)
    return encoder.has_relative_attention_bias or encoder.has_spatial_attention_bias
