"""Count a token-classification encoder's floating-point operations from its config.

Per sequence of L text tokens, with T tokens through the encoder (T = L, plus the image
patches and their [CLS] for LayoutLMv3), hidden size d, feed-forward size f, N layers and
C labels (one multiply-add = 2 FLOPs):

    linear     = 2 * T * N * (4*d*d + 2*d*f)     query, key, value, output; the two feed-forward layers
    attention  = 4 * T*T * d * N                 Q.K^T and A.V: T*T*d multiply-adds each
    classifier = 2 * L * d * C                   on the text tokens only
    patches    = 2 * P * 3*p*p * d               LayoutLMv3's patch embedding (P patches of p x p pixels)

Embedding lookups, LayoutLMv3's relative-position biases (gathers), LayerNorm, softmax,
GELU and biases are left out: they cost memory traffic, not matrix FLOPs. A padded position
costs the same as a real one, so a batch costs `batch * per_sequence(padded length)`.
What an int8 model runs in int8 depends on its recipe, so it is read from the graph
(bench/quantised.py) and applied with `int8_part`: optimum's recipe quantises attention's
activation products too; the fused graph's QAttention keeps them in fp32; the patch
convolution always stays fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flops:
    """FLOPs of one forward pass, split by what INT8 dynamic quantisation can run in INT8."""

    linear: int
    attention: int
    classifier: int
    patches: int

    @property
    def total(self) -> int:
        return self.linear + self.attention + self.classifier + self.patches

    @property
    def quantisable(self) -> int:
        return self.linear + self.classifier

    def int8_part(self, share: Any) -> int:
        """FLOPs run in int8 under a QuantisedShare: weight GEMMs and attention products by their shares."""
        return round((self.linear + self.classifier) * share.linear + self.attention * share.attention)

    def __mul__(self, k: int) -> Flops:
        return Flops(self.linear * k, self.attention * k, self.classifier * k, self.patches * k)

    __rmul__ = __mul__

    def __add__(self, other: Flops) -> Flops:
        return Flops(
            self.linear + other.linear,
            self.attention + other.attention,
            self.classifier + other.classifier,
            self.patches + other.patches,
        )


ZERO = Flops(0, 0, 0, 0)


def _get(config: Any, *names: str) -> int:
    """The first of `names` the config has (DistilBERT says dim/hidden_dim, BERT hidden_size/intermediate_size)."""
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise ValueError(f"{type(config).__name__} has none of {names}")


def widths(config: Any) -> tuple[int, int]:
    """(hidden size, feed-forward size): the shapes of the model's weight GEMMs."""
    return _get(config, "hidden_size", "dim"), _get(config, "intermediate_size", "hidden_dim")


def visual_patches(config: Any) -> int:
    """Image patches LayoutLMv3 appends to the text (0 for text and box-only models)."""
    if getattr(config, "model_type", "") != "layoutlmv3" or not getattr(config, "visual_embed", False):
        return 0
    side = int(config.input_size) // int(config.patch_size)
    return side * side


def sequence_flops(config: Any, length: int) -> Flops:
    """FLOPs of one sequence of `length` text tokens (see the module docstring for the formula)."""
    d = _get(config, "hidden_size", "dim")
    f = _get(config, "intermediate_size", "hidden_dim")
    layers = _get(config, "num_hidden_layers", "n_layers")
    labels = int(getattr(config, "num_labels", 2))
    patches = visual_patches(config)
    tokens = length + (patches + 1 if patches else 0)  # +1: the image's [CLS] token
    patch_size = int(getattr(config, "patch_size", 0) or 0)
    channels = int(getattr(config, "num_channels", 3) or 3)
    return Flops(
        linear=2 * tokens * layers * (4 * d * d + 2 * d * f),
        attention=4 * tokens * tokens * d * layers,
        classifier=2 * length * d * labels,
        patches=2 * patches * channels * patch_size * patch_size * d,
    )


def batch_flops(config: Any, batch: int, length: int) -> Flops:
    return batch * sequence_flops(config, length)


def max_text_length(config: Any) -> int:
    """The longest text a model takes: RoBERTa-style position tables (LayoutLMv3) lose pad_token_id + 1 slots."""
    positions = _get(config, "max_position_embeddings")
    if getattr(config, "model_type", "") in {"layoutlmv3", "roberta", "xlm-roberta", "camembert"}:
        pad = getattr(config, "pad_token_id", None)
        positions -= (1 if pad is None else int(pad)) + 1
    return positions
