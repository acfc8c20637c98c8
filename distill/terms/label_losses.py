"""Token-classification losses for rare types: class-balanced cross-entropy and focal loss.

FUNSD's HEADER words are 6.7% of the training words and its B-HEADER tags fewer still; a teacher
trained with plain cross-entropy can learn never to predict them. Two standard remedies, as one
option (`--teacher-loss`), each a term of the teacher's declared loss (distill/terms/declared.py):

- balanced: cross-entropy with per-tag weights from the training windows' own tag counts,
  inverse frequency normalised so that the average weight over the training positions is 1
  (scikit-learn's "balanced": w_c = N / (K * n_c), K the tags seen, n_c their counts), so
  the loss keeps plain cross-entropy's scale and learning rates carry over;
- focal: (1 - p_t)^gamma * -log p_t (Lin et al., 2017): confidently right positions (most O
  words) weigh little, hard ones much; gamma 0 is cross-entropy;
- balanced-focal: both (the balanced weights are focal loss's alpha_t).

Counting over windows, not forms: a word in two overlapping windows is trained on twice, so it
counts twice, which is exactly the frequency the loss sees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from distill.config import TOKEN_LOSSES
from distill.windows import IGNORE_INDEX

if TYPE_CHECKING:
    from distill.terms.inputs import TermInputs


def tag_counts(windows: Sequence[dict[str, np.ndarray]], num_labels: int) -> np.ndarray:
    """How often each tag labels a training position (first sub-tokens), over all windows."""
    counts = np.zeros(num_labels, dtype=np.int64)
    for window in windows:
        labels = window["labels"]
        counts += np.bincount(labels[labels != IGNORE_INDEX], minlength=num_labels)[:num_labels]
    return counts


def balanced_weights(counts: np.ndarray) -> np.ndarray:
    """N / (K * n_c) per tag seen (K tags seen); a tag never seen gets weight 0: no position has it."""
    seen = counts > 0
    weights = np.zeros(len(counts), dtype=np.float64)
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return weights


def token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    kind: str = "ce",
    weights: torch.Tensor | None = None,
    gamma: float = 2.0,
) -> torch.Tensor:
    """The mean loss over labelled positions (labels != -100).

    Weighted means divide by the weights' sum (PyTorch's cross_entropy convention), so a batch of
    rare tags is not worth more than a batch of common ones of the same size beyond the weights.
    """
    if kind not in TOKEN_LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(TOKEN_LOSSES)}")
    mask = labels != IGNORE_INDEX
    logits, labels = logits[mask].float(), labels[mask]
    if logits.numel() == 0:
        return logits.sum() * 0.0
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    weight = weights.to(logits.device, logits.dtype) if kind.startswith("balanced") else None
    if kind == "balanced":
        return F.cross_entropy(logits, labels, weight=weight)
    log_p = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
    focal = -((1.0 - log_p.exp()) ** gamma) * log_p
    if weight is None:
        return focal.mean()
    alpha = weight[labels]
    return (alpha * focal).sum() / alpha.sum()


def label_loss_term(kind: str) -> Callable[[TermInputs, Mapping[str, Any]], torch.Tensor]:
    """`token_loss` of this kind as a loss term (loss_terms.TERMS): class weights from the Trainer,
    the focusing exponent from the term's settings."""

    def term(inputs: TermInputs, settings: Mapping[str, Any]) -> torch.Tensor:
        # LayoutLMv3 with an image may append its patches after the text; labels cover the text only.
        logits = inputs.logits[:, : inputs.labels.shape[1]]
        return token_loss(logits, inputs.labels, kind, inputs.class_weights, settings.get("gamma", 0.0))

    return term


def class_weights_record(weights: np.ndarray, id2label: Mapping[int, str]) -> dict[str, Any]:
    """What metrics.json says about the class weights a balanced loss trained with."""
    return {
        "class_weights": {id2label[i]: round(float(w), 4) for i, w in enumerate(weights)},
        "class_weights_from": "training windows' tag counts: N / (K * n_c)",
    }
