"""Token-classification losses for rare types: class-balanced cross-entropy and focal loss.

FUNSD's HEADER words are 6.7% of the training words and its B-HEADER tags fewer still; a teacher
trained with plain cross-entropy can learn never to predict them. Two standard remedies, as one
option (`--teacher-loss`):

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

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer

from distill.windows import IGNORE_INDEX

TOKEN_LOSSES = ("ce", "balanced", "focal", "balanced-focal")


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


class TokenLossTrainer(Trainer):
    """A Trainer whose loss is `token_loss` (the models' own loss is plain cross-entropy)."""

    def __init__(
        self,
        *args: Any,
        loss_kind: str = "ce",
        class_weights: torch.Tensor | None = None,
        focal_gamma: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_kind = loss_kind
        self.class_weights = class_weights
        self.focal_gamma = focal_gamma

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        # LayoutLMv3 with an image appends its patches after the text; labels cover the text only.
        logits = outputs.logits[:, : labels.shape[1]]
        loss = token_loss(logits, labels, self.loss_kind, self.class_weights, self.focal_gamma)
        return (loss, outputs) if return_outputs else loss


def loss_record(kind: str, gamma: float, weights: np.ndarray | None, id2label: dict) -> dict[str, Any]:
    """What metrics.json says about a model's training loss."""
    record: dict[str, Any] = {"kind": kind}
    if "focal" in kind:
        record["focal_gamma"] = gamma
    if weights is not None:
        record["class_weights"] = {id2label[i]: round(float(w), 4) for i, w in enumerate(weights)}
        record["class_weights_from"] = "training windows' tag counts: N / (K * n_c)"
    return record
