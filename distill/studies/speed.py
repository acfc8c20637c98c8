"""forms/s of the FUNSD study's models, PyTorch fp32 beside each one's recommended CPU variant, timed together.

Speeds are compared as ratios (a student's forms/s over the teacher's in the same runtime), so they
are measured in one session, interleaved: every round times each model once over the whole test
split, in an order rotated from round to round, so a slow spell of a shared machine falls on every
model alike. A model's figure is its median over the rounds. forms/s is end to end from words,
boxes (and the page image, for a model that reads it) to word logits: windows, tokenisation, image
preprocessing and the forward passes, batched as the study scores (`--batch-size` windows).

The recommended CPU variant is whatever the run's export chose (onnx/manifest.json
`recommended_cpu`), read through distill.predict's `recommended_cpu_variant` alone (the one that
serves a run directory), so every runtime the export recommends (onnxruntime, OpenVINO) is timed
here through load_predictor.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from distill.errors import DistillError
from distill.run_dir import read_json

PYTORCH = "pytorch"
RECOMMENDED = "recommended"
SPEED_FILE = "speed.json"  # in the study's output directory


def variant_record(run: Path, model: str, variant: str) -> dict[str, Any] | None:
    """The manifest's figures for one variant (its F1 and its delta against PyTorch)."""
    path = run / "onnx" / "manifest.json"
    if not path.is_file():
        return None
    return read_json(path).get("models", {}).get(model, {}).get("variants", {}).get(variant)


@dataclass(frozen=True)
class Target:
    """One model in one runtime to time."""

    row: str  # the study row (its run directory's name)
    runtime: str  # PYTORCH or RECOMMENDED
    path: Path  # the model directory load_predictor takes
    variant: str  # "pytorch fp32" or the exported variant's name


def time_all(
    targets: Sequence[Target],
    forms: list[dict[str, Any]],
    max_length: int,
    stride: int,
    batch_size: int,
    rounds: int,
) -> dict[str, dict[str, Any]]:
    """Per row, per runtime: forms/s (median over `rounds` interleaved passes over `forms`)."""
    from distill.predict import load_predictor, predict_word_logits

    if not forms:
        raise DistillError("no test forms to time")
    predictors = {}
    for target in tqdm(targets, desc="loading models", leave=False):
        predictor = load_predictor(target.path, max_length=max_length, stride=stride, batch_size=batch_size)
        predict_word_logits(predictor.encoder, predictor.backend, forms[:2], batch_size)  # warm-up
        predictors[target] = predictor
    seconds: dict[Target, list[float]] = {t: [] for t in targets}
    for r in tqdm(range(rounds), desc="timing rounds"):
        shift = r % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            predictor = predictors[target]
            start = time.perf_counter()
            predict_word_logits(predictor.encoder, predictor.backend, forms, batch_size)
            seconds[target].append(time.perf_counter() - start)
    out: dict[str, dict[str, Any]] = {}
    for target, times in seconds.items():
        out.setdefault(target.row, {})[target.runtime] = {
            "variant": target.variant,
            "forms_per_s": len(forms) / statistics.median(times),
            "seconds_per_pass": [round(t, 3) for t in times],
        }
    return out
