"""Synthetic batches of a fixed shape for the latency matrix (batch x sequence length).

Dense attention and GEMMs cost the same whatever the token values, so random ids time the same
as real words; what matters is the shape and that every field the model takes is present and
valid (ids inside the vocabulary, boxes with x0 <= x1 inside 0..1000, an image of the size the
model expects).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distill.windows import BOX_MODEL_TYPES, takes_image


def synthetic_batch(config: Any, batch: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A full (unpadded) batch of `batch` windows of `length` tokens for a model with this config."""
    rng = np.random.default_rng(seed)
    low = min(10, config.vocab_size - 1)  # skip the special tokens at the start of every vocabulary
    out: dict[str, np.ndarray] = {
        "input_ids": rng.integers(low, config.vocab_size, (batch, length), dtype=np.int64),
        "attention_mask": np.ones((batch, length), dtype=np.int64),
    }
    if config.model_type in BOX_MODEL_TYPES:
        corners = rng.integers(0, 1001, (batch, length, 2, 2), dtype=np.int64)
        low_xy, high_xy = corners.min(axis=2), corners.max(axis=2)
        out["bbox"] = np.concatenate([low_xy, high_xy], axis=-1)  # x0, y0, x1, y1
    if takes_image(config):  # a LayoutLMv3 built without its image path takes none
        size = int(getattr(config, "input_size", 224))
        out["pixel_values"] = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    return out
