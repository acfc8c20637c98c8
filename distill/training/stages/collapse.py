"""A teacher that answers one label for nearly every word has learnt nothing a student should copy.

A tiny teacher at too high a learning rate can collapse (on CORD receipts it gave I-menu.nm to
every word: its word accuracy, 15.5%, was exactly that label's share). Its targets would teach
the students the collapse, so distilling from it is refused unless asked for. Judged on the
training forms the students learn from (never the test split), the way the export gate judges a
quantised variant: one label on nearly every word, far more often than the labels give it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from distill.labels import LabelSet

COLLAPSE_SHARE = 0.95  # one label predicted for this share of the training words ...
COLLAPSE_MARGIN = 0.10  # ... while the labels give it at least this much less: collapsed


def teacher_collapse(
    targets: Sequence[np.ndarray], gold: Sequence[Sequence[int]], labels: LabelSet
) -> dict[str, Any] | None:
    """The collapse (label, its predicted and labelled shares), or None for a teacher that discriminates.

    `targets`: the teacher's word targets per training form (logits first); `gold`: their tags.
    """
    width = len(labels.tags)
    predicted = np.concatenate([np.asarray(t)[:, :width].argmax(-1) for t in targets if len(t)] or [[]])
    tags = np.concatenate([np.asarray(g, dtype=np.int64) for g in gold if len(g)] or [[]])
    if not predicted.size:
        return None
    top = int(np.bincount(predicted.astype(np.int64), minlength=width).argmax())
    share, gold_share = float((predicted == top).mean()), float((tags == top).mean())
    if share >= COLLAPSE_SHARE and share - gold_share >= COLLAPSE_MARGIN:
        return {
            "label": labels.tags[top],
            "predicted_share": round(share, 4),
            "label_share": round(gold_share, 4),
        }
    return None


def describe_collapse(collapse: dict[str, Any]) -> str:
    return (
        f"the teacher predicts {collapse['label']} for {collapse['predicted_share']:.1%} of the training words "
        f"(the labels give it {collapse['label_share']:.1%}): it has collapsed"
    )
