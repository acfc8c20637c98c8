"""INT8 quantisation with an accuracy gate: a ladder of known mitigations, the fastest that keeps F1.

Dynamic quantisation collapses some BERT-family models (onnxruntime issues 9599 and 11286,
optimum issue 151): outliers in a few activations stretch a per-tensor scale until small values
round to zero. The ladder, each rung a documented onnxruntime option:

1. dynamic: per-tensor int8 weights, uint8 activations (U8S8, the AVX-512 VNNI / AMX fast path);
2. per-channel weights: one scale per output column;
3. reduced range: 7-bit weights, for CPUs without VNNI where U8S8 products can saturate;
4. the most sensitive MatMuls in fp32: the classifier, every attention output projection, and
   the embeddings (only MatMul and Attention quantised);
5. static QDQ: activation ranges calibrated (MinMax) on training windows instead of measured per
   batch; per-channel weights.

Every rung passes or fails the accuracy gate on held-out training forms (export/validate.py:
F1 budget, argmax agreement floor, no collapse); the passing rungs are timed interleaved
(export/timing.py), and the plain recipe (the first passing rung) is kept unless another is
faster beyond the measured noise (`choose`). On a VNNI CPU the reduced-range rung is not tried:
7-bit weights guard against U8S8 saturation that VNNI does not have, and cost accuracy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from export.isa import has_vnni
from export.optimize import quiet_optimizer
from export.timing import LATENCY_TIE, beyond_noise

# Fused contrib ops (Attention, SkipLayerNormalization...) have no ONNX shape inference: tell the
# quantiser their outputs are float rather than let it skip the MatMuls that follow them.
_FLOAT_DEFAULT = {"DefaultTensorType": onnx.TensorProto.FLOAT}


@dataclass(frozen=True)
class Attempt:
    """One rung of the ladder: how to quantise, in words and in onnxruntime's options."""

    name: str
    description: str
    static: bool = False
    per_channel: bool = False
    reduce_range: bool = False
    keep_sensitive_fp32: bool = False
    unfused: bool = False  # quantise the plain fp32 graph, not the optimiser's fused one

    def settings(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("name")
        out.pop("description")
        return out


LADDER: tuple[Attempt, ...] = (
    # optimum's default recipe: every MatMul (attention's activation products too) on the unfused graph,
    # which onnxruntime fuses (DynamicQuantizeMatMul) at load. Measured here on DistilBERT-base it
    # beats the fused graph, whose QAttention leaves the attention products in fp32.
    Attempt(
        "dynamic-unfused",
        "dynamic, per-channel, every MatMul on the unfused fp32 graph",
        per_channel=True,
        unfused=True,
    ),
    Attempt("dynamic", "dynamic, per-tensor int8 weights (U8S8), on the fused graph"),
    Attempt("dynamic-per-channel", "dynamic, per-channel int8 weights", per_channel=True),
    Attempt(
        "dynamic-reduced-range",
        "dynamic, per-channel 7-bit weights (reduce_range)",
        per_channel=True,
        reduce_range=True,
    ),
    Attempt(
        "dynamic-keep-sensitive",
        "dynamic, per-channel; classifier, attention outputs and embeddings left in fp32",
        per_channel=True,
        keep_sensitive_fp32=True,
    ),
    Attempt(
        "static-qdq",
        "static QDQ, per-channel, MinMax-calibrated on training windows",
        static=True,
        per_channel=True,
    ),
)
ATTEMPTS = {a.name: a for a in LADDER}

# The output projection of attention, by the names transformers' modules give it.
_ATTENTION_OUTPUT = re.compile(r"attention/(output/dense|out_lin|out_proj|o_proj|output)/", re.IGNORECASE)


def sensitive_matmuls(model: onnx.ModelProto) -> list[str]:
    """MatMul nodes to keep in fp32: the classifier and the attention output projections."""
    producers = {out: node for node in model.graph.node for out in node.output}
    names = []
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        source = producers.get(node.input[0])
        after_attention = source is not None and source.op_type in ("Attention", "MultiHeadAttention")
        if "classifier" in node.name or after_attention or _ATTENTION_OUTPUT.search(node.name):
            names.append(node.name)
    return names


class WindowReader(CalibrationDataReader):
    """Feeds calibration batches (dicts of numpy arrays named as the model's inputs) one at a time."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._feeds = list(feeds)
        self._iter = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._feeds)


def quantize(
    attempt: Attempt,
    optimized_path: Path,
    fp32_path: Path,
    out_path: Path,
    calibration: Callable[[], Iterable[dict[str, np.ndarray]]] | None = None,
) -> dict[str, Any]:
    """Write the attempt's int8 model to `out_path`; returns what was done (excluded nodes, seconds)."""
    started = time.perf_counter()
    details: dict[str, Any] = {}
    with quiet_optimizer():
        if attempt.static:
            if calibration is None:
                raise ValueError("static quantisation needs calibration windows")
            # Static QDQ starts from the unfused graph: the quantiser must see every MatMul and
            # know its tensor types, which the fused contrib ops hide. onnxruntime's own
            # pre-processing (shape inference, basic rewrites) is the documented first step.
            prepared = out_path.with_name("prepared.onnx")
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
            feeds = list(calibration())
            quantize_static(
                str(prepared),
                str(out_path),
                WindowReader(feeds),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul"],
                per_channel=attempt.per_channel,
                reduce_range=attempt.reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options=dict(_FLOAT_DEFAULT),
            )
            prepared.unlink(missing_ok=True)
            details["calibration_batches"] = len(feeds)
        else:
            exclude: list[str] = []
            op_types = None  # onnxruntime's default: every op it has an integer kernel for
            extra = dict(_FLOAT_DEFAULT)
            if attempt.unfused:
                op_types = ["MatMul", "Gather"]  # Gather: the embedding tables go int8 too
                extra["MatMulConstBOnly"] = False  # the attention products too, as optimum does
            if attempt.keep_sensitive_fp32:
                exclude = sensitive_matmuls(onnx.load(str(optimized_path), load_external_data=False))
                op_types = ["MatMul", "Attention"]
            quantize_dynamic(
                str(fp32_path if attempt.unfused else optimized_path),
                str(out_path),
                op_types_to_quantize=op_types,
                per_channel=attempt.per_channel,
                reduce_range=attempt.reduce_range,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude or None,
                extra_options=extra,
            )
            if exclude:
                details["nodes_kept_fp32"] = exclude
    details["quantize_seconds"] = round(time.perf_counter() - started, 3)
    return details


@dataclass
class AttemptResult:
    """An attempt's figures for the manifest; `meets_budget` is decided against the reference F1."""

    name: str
    description: str
    settings: dict[str, Any]
    f1: float | None = None
    delta_f1_points: float | None = None
    latency_ms: float | None = None
    size_bytes: int | None = None
    meets_budget: bool = False
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def skip_reason(attempt: Attempt, isa: str) -> str | None:
    """Why a rung is not tried on this CPU (None: try it)."""
    if attempt.reduce_range and has_vnni(isa):
        return "not tried: reduce_range guards against U8S8 saturation, which this VNNI CPU does not have"
    return None


def meets(f1: float, reference_f1: float, budget_points: float) -> bool:
    """Within budget: loses at most `budget_points` F1 points (F1 on a 0..1 scale, points x100)."""
    return (reference_f1 - f1) * 100.0 <= budget_points + 1e-9


def choose(results: Sequence[AttemptResult], margin: float = LATENCY_TIE) -> AttemptResult | None:
    """The plain recipe (the first rung that passes the gate), unless another passing rung is
    faster than it by more than `margin` (the noise: export/timing.margin); then the fastest."""
    passing = [r for r in results if r.meets_budget and r.latency_ms is not None]
    if not passing:
        return None
    plain = passing[0]
    fastest = min(passing, key=lambda r: r.latency_ms)  # type: ignore[arg-type,return-value]
    if fastest is not plain and beyond_noise(fastest.latency_ms, plain.latency_ms, margin):  # type: ignore[arg-type]
        return fastest
    return plain
