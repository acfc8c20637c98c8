"""Word-level scores: seqeval entity precision/recall/F1 (overall and per type) and word accuracy.

Called directly rather than through `evaluate.load("seqeval")`, which fetches the metric script
from the hub at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics import accuracy_score, classification_report

from distill.labels import LabelSet, tag_type


def score_tags(
    true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], types: Sequence[str] | None = None
) -> dict:
    """Entity-level P/R/F1 (seqeval's default, conlleval-style) and word accuracy.

    `per_type` lists `types` in their order (the run's labels), else every type in the tags, sorted.
    """
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        if len(t) != len(p):
            raise ValueError(f"form {i}: {len(t)} gold tags but {len(p)} predicted")
    true_l, pred_l = [list(t) for t in true], [list(p) for p in pred]
    report = classification_report(true_l, pred_l, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    per_type = {
        name: {
            "precision": float(report.get(name, {}).get("precision", 0.0)),
            "recall": float(report.get(name, {}).get("recall", 0.0)),
            "f1": float(report.get(name, {}).get("f1-score", 0.0)),
            "support": int(report.get(name, {}).get("support", 0)),
        }
        for name in (types if types is not None else _types_in(true_l, pred_l))
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "word_accuracy": float(accuracy_score(true_l, pred_l)) if any(true_l) else 0.0,
        "entities": int(micro["support"]),
        "words": sum(len(t) for t in true_l),
        "per_type": per_type,
    }


def _types_in(*sequences: list[list[str]]) -> list[str]:
    return sorted({t for seqs in sequences for seq in seqs for tag in seq if (t := tag_type(tag))})


def score_word_logits(
    gold_ids: Sequence[Sequence[int]], word_logits: Sequence[np.ndarray], labels: LabelSet
) -> dict:
    """Score per-word logits (one array per form) against gold tag ids, both in `labels`' tags."""
    tags = labels.tags
    true = [[tags[int(t)] for t in ids] for ids in gold_ids]
    # A form without words scores nothing (its logits may have no columns either).
    pred = [[tags[int(i)] for i in logits.argmax(-1)] if len(logits) else [] for logits in word_logits]
    return score_tags(true, pred, labels.types)
