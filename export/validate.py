"""Prove an exported model: logits against PyTorch on real windows, entity F1, latency.

Parity is measured on evaluation windows as the prediction API batches them (padded), over the
positions the attention mask keeps. F1 goes through `predict_word_logits` and
`score_word_logits`, the same window merge and word-level scoring as training and the bench.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from distill.labels import LabelSet
from distill.metrics import score_word_logits
from distill.predict import Backend, predict_word_logits
from distill.windows import WindowEncoder, pad_batch

# Default fp32 bounds on max |logit difference| (the issue's): the teacher's graph is longer (image
# patches, relative position biases), so its sums have more room to round differently. Measured
# maxima sit far below both: 5e-6 (teacher) and 8e-6 (students) on a tiny run trained on FUNSD,
# 1.8e-6 for all-MiniLM-L6-v2 at full size.
TOLERANCE = {"teacher": 1e-3}
DEFAULT_TOLERANCE = 1e-4


def tolerance_for(model_name: str) -> float:
    return TOLERANCE.get(model_name, DEFAULT_TOLERANCE)


def batches_of(
    windows: Sequence[dict[str, np.ndarray]], batch_size: int, pad_id: int
) -> list[dict[str, np.ndarray]]:
    return [pad_batch(windows[i : i + batch_size], pad_id) for i in range(0, len(windows), batch_size)]


def parity_windows(
    encoder: WindowEncoder, forms: Sequence[dict[str, Any]], limit: int
) -> list[dict[str, np.ndarray]]:
    """Up to `limit` windows of the evaluation forms, in order (long forms give several)."""
    windows: list[dict[str, np.ndarray]] = []
    for form in forms:
        windows.extend(encoder.encode_form(form["tokens"], form.get("bboxes"), form.get("image")))
        if len(windows) >= limit:
            break
    return windows[:limit]


def run(backend: Backend, batches: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
    return [backend(batch) for batch in batches]


@dataclass
class Parity:
    max_abs_diff: float
    mean_abs_diff: float
    argmax_agreement: float
    windows: int
    tokens: int
    tolerance: float | None = None

    @property
    def within_tolerance(self) -> bool:
        return self.tolerance is None or self.max_abs_diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        out = {
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "argmax_agreement": self.argmax_agreement,
            "windows": self.windows,
            "tokens": self.tokens,
        }
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance
            out["within_tolerance"] = self.within_tolerance
        return out


def compare(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    batches: Sequence[dict[str, np.ndarray]],
    tolerance: float | None = None,
) -> Parity:
    """Logit differences over real (unpadded) tokens, and how often the predicted label agrees."""
    diffs, agree = [], []
    for ref, cand, batch in zip(reference, candidate, batches, strict=True):
        keep = batch["attention_mask"].astype(bool)
        ref_tokens, cand_tokens = ref[keep], cand[keep]
        diffs.append(np.abs(ref_tokens.astype(np.float64) - cand_tokens.astype(np.float64)).ravel())
        agree.append(ref_tokens.argmax(-1) == cand_tokens.argmax(-1))
    diff = np.concatenate(diffs)
    same = np.concatenate(agree)
    return Parity(
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        argmax_agreement=float(same.mean()) if same.size else 1.0,
        windows=sum(len(b["input_ids"]) for b in batches),
        tokens=int(same.size),
        tolerance=tolerance,
    )


# The accuracy gate a lower-precision variant must pass, on held-out training forms (never the
# test split, which is reported once, for the variant kept). F1 alone can hide a broken model: a
# variant that flips labels on a few per cent of words, or answers one label everywhere, can move
# F1 little on a small split. Agreement is counted on words (the merged word logits every prediction
# reads), never on [CLS]/[SEP] or continuation sub-tokens, which no prediction reads and where most of
# the disagreement sits (on the quickstart student's int8: 99.97% on words, 99.26% on the other 40% of
# tokens). Floors chosen here, stated in the manifest and the report:
# int8 may change at most 10% of the gate's words, where fp32 is unsure more often than on test forms.
# Counted on words, on the gate forms of a MiniLM student fine-tuned on FUNSD for 40 steps: NNCF int8
# kept 97.5%, onnxruntime's per-channel dynamic int8 96.6%, its per-tensor rung 89.9% (refused), its
# static QDQ 89.7% (refused); a better-trained FUNSD MiniLM student's per-channel int8 kept 95.2% of
# word labels on the test split. fp16 rounds far less: at most 1% (it kept 99.95% there).
INT8_AGREEMENT_FLOOR = 0.90
FP16_AGREEMENT_FLOOR = 0.99
FP16_BUDGET_POINTS = 0.5  # F1 points fp16 may lose against PyTorch fp32
COLLAPSE_SHARE = 0.98  # one label on this share of words ...
COLLAPSE_MARGIN = 0.10  # ... where fp32 gives it this much less: collapsed


def word_logits(
    encoder: WindowEncoder,
    backend: Backend,
    forms: Sequence[dict[str, Any]],
    batch_size: int,
    progress: str | None = None,
) -> list[np.ndarray]:
    """Per form, the merged [words, labels] logits (what every prediction and score reads)."""
    return predict_word_logits(encoder, backend, forms, batch_size, progress=progress, total=len(forms))


def _labels(logits: Sequence[np.ndarray]) -> np.ndarray:
    rows = [w.argmax(-1) for w in logits if len(w)]
    return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)


def word_agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> tuple[float, int]:
    """(share of words whose label agrees with the reference, words counted)."""
    ref, cand = _labels(reference), _labels(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"{ref.size} reference words but {cand.size} candidate words")
    return (float((ref == cand).mean()) if ref.size else 1.0), int(ref.size)


def collapse_reason(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> str | None:
    """Why the candidate's word logits look collapsed (non-finite, one label nearly everywhere), or None."""
    if any(not np.isfinite(w).all() for w in candidate):
        return "non-finite logits"
    ref_all, cand_all = _labels(reference), _labels(candidate)
    if not cand_all.size:
        return None
    label = int(np.bincount(cand_all).argmax())
    share, ref_share = float((cand_all == label).mean()), float((ref_all == label).mean())
    if share >= COLLAPSE_SHARE and share - ref_share >= COLLAPSE_MARGIN:
        return f"predicts label {label} on {share:.1%} of words (fp32: {ref_share:.1%})"
    return None


def gate(
    f1: float,
    reference_f1: float,
    agreement: float,
    collapsed: str | None,
    budget_points: float,
    agreement_floor: float,
    words: int | None = None,
) -> dict[str, Any]:
    """The gate's verdict: within the F1 budget, word agreement above the floor, not collapsed."""
    delta = (f1 - reference_f1) * 100.0
    reasons = []
    if delta < -budget_points - 1e-9:
        reasons.append(f"loses {-delta:.2f} F1 points (budget {budget_points})")
    if agreement < agreement_floor:
        reasons.append(f"word agreement {agreement:.2%} below the floor {agreement_floor:.0%}")
    if collapsed:
        reasons.append(f"collapsed: {collapsed}")
    return {
        "f1": f1,
        "reference_f1": reference_f1,
        "delta_f1_points": round(delta, 4),
        "word_agreement": agreement,
        "words": words,
        "agreement_floor": agreement_floor,
        "budget_f1_points": budget_points,
        "collapsed": collapsed,
        "passes": not reasons,
        "why_not": "; ".join(reasons) or None,
    }


def batch_sensitivity(
    encoder: WindowEncoder,
    backend: Backend,
    forms: Sequence[dict[str, Any]],
    batched: Sequence[np.ndarray],
    batch_size: int,
) -> dict[str, Any]:
    """Word labels one window at a time against `batched` (the same forms at `batch_size`, windows of
    neighbouring forms sharing a batch): a variant whose labels move with its neighbours (dynamic
    activation scales over the padded batch) is a serving hazard."""
    alone = word_logits(encoder, backend, forms, 1)
    changed = [int((a.argmax(-1) != b.argmax(-1)).sum()) for a, b in zip(alone, batched, strict=True)]
    words = sum(len(a) for a in alone)
    return {
        "batch": batch_size,
        "words": words,
        "words_changed": sum(changed),
        "share_changed": sum(changed) / words if words else 0.0,
        "forms_changed": sum(1 for c in changed if c),
        "forms": len(forms),
        "invariant": not any(changed),
    }


def score(
    encoder: WindowEncoder,
    backend: Backend,
    forms: Sequence[dict[str, Any]],
    batch_size: int,
    labels: LabelSet,
    progress: str | None = None,
) -> dict[str, Any]:
    """Entity P/R/F1 (overall and per type of `labels`) and word accuracy on `forms` (dicts with
    tokens, bboxes, image, ner_tags)."""
    return score_logits(forms, word_logits(encoder, backend, forms, batch_size, progress), labels)


def score_logits(
    forms: Sequence[dict[str, Any]], logits: Sequence[np.ndarray], labels: LabelSet
) -> dict[str, Any]:
    """score(), from word logits already predicted."""
    return score_word_logits([f["ner_tags"] for f in forms], list(logits), labels)


def latency_ms(backend: Backend, batch: dict[str, np.ndarray], warmup: int = 3, repeats: int = 10) -> float:
    """Fastest wall time of one call on `batch`, after warm-up: enough to rank variants.

    The fastest, not the median: on a shared machine other processes only ever add time, and
    the median of a few calls swings with them (the bench measures distributions properly).
    """
    for _ in range(warmup):
        backend(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        backend(batch)
        times.append(time.perf_counter() - started)
    return float(min(times) * 1000.0)
