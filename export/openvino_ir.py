"""OpenVINO variants: the fp32 ONNX export as OpenVINO IR, and NNCF's post-training int8 of it.

- `openvino`: `openvino.convert_model` of the fp32 ONNX graph, saved with fp32 weights. The CPU
  plugin compiles it at the CPU's default inference precision (bf16 where the CPU has it natively,
  f32 elsewhere); the export records which.
- `openvino-int8`: `nncf.quantize` with the transformer model type (NNCF's recipe for transformers:
  SmoothQuant on the activations feeding MatMuls, no quantisation of the attention products or
  the additions that would cost accuracy), activation ranges calibrated on training windows. The
  scales are static: a window's labels do not depend on the windows that share its batch, unlike
  onnxruntime's dynamic int8 (one activation scale over the whole padded batch).

Every int8 rung goes through the export's accuracy gate (export/validate.py); when the plain
recipe fails it, NNCF's own mitigations follow (the ladder): the sensitive layers kept in floating
point through an `IgnoredScope`, then `nncf.quantize_with_accuracy_control`, which reverts the
layers that cost most until a validation metric is back within a drop. The export stops at the
first rung through the gate and records every rung it tried.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distill.predict.openvino_runtime import IR_FILE

# The output projection of attention and the classifier, by the names transformers' modules give them
# (the ONNX node names survive conversion): export/quantize.py keeps the same MatMuls in fp32.
SENSITIVE_PATTERNS = (
    r".*classifier.*",
    r".*attention/(output/dense|out_lin|out_proj|o_proj|output)/.*",
)


@dataclass(frozen=True)
class OvAttempt:
    """One rung of the OpenVINO int8 ladder, in words and in NNCF's options."""

    name: str
    description: str
    keep_sensitive: bool = False
    accuracy_control: bool = False

    def settings(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("name")
        out.pop("description")
        return out


LADDER: tuple[OvAttempt, ...] = (
    OvAttempt(
        "nncf-transformer",
        "nncf.quantize, transformer model type, static activation ranges calibrated on training windows",
    ),
    OvAttempt(
        "nncf-keep-sensitive",
        "the same; the classifier and every attention output projection left in floating point (IgnoredScope)",
        keep_sensitive=True,
    ),
    OvAttempt(
        "nncf-accuracy-control",
        "nncf.quantize_with_accuracy_control: the layers that cost most F1 on perturbed copies of "
        "calibration forms reverted to floating point until within the budget there",
        accuracy_control=True,
    ),
)
ATTEMPTS = {a.name: a for a in LADDER}


@contextlib.contextmanager
def quiet_nncf() -> Iterator[None]:
    """NNCF logs every step at INFO and draws its progress bars on stdout: warnings only, bars on
    stderr (where tqdm's go), so the export's stdout stays its summary."""
    import nncf

    logger = logging.getLogger("nncf")
    previous = logger.level
    nncf.set_log_level(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        nncf.set_log_level(previous)


def convert(onnx_path: Path, out_dir: Path) -> float:
    """The ONNX graph as OpenVINO IR in `out_dir` (fp32 weights kept); returns the seconds taken."""
    import openvino as ov

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))
    # compress_to_fp16=False: the IR keeps the fp32 weights; the precision is the plugin's choice at compile time.
    ov.save_model(model, str(out_dir / IR_FILE), compress_to_fp16=False)
    return time.perf_counter() - started


@dataclass
class Validation:
    """What accuracy control validates on: items (forms), a metric over them, the largest drop allowed."""

    items: Sequence[Any]
    metric: Callable[[Any, Sequence[Any]], float]  # (compiled model, items) -> F1 on 0..1
    max_drop: float  # absolute, on the metric's scale
    transform: Callable[[Any], dict[str, np.ndarray]]  # an item as model inputs (NNCF asks for one)


def quantize(
    attempt: OvAttempt,
    fp32_ir: Path,
    out_dir: Path,
    calibration: Sequence[dict[str, np.ndarray]],
    validation: Validation | None = None,
) -> dict[str, Any]:
    """Write the attempt's int8 IR to `out_dir`; returns what was done (ignored layers, seconds)."""
    import nncf
    import openvino as ov

    started = time.perf_counter()
    details: dict[str, Any] = {"calibration_windows": len(calibration)}
    model = ov.Core().read_model(str(fp32_ir))
    options: dict[str, Any] = {
        "model_type": nncf.ModelType.TRANSFORMER,
        "subset_size": len(calibration),  # every calibration window (NNCF's default takes up to 300)
    }
    if attempt.keep_sensitive:
        ignored = sensitive_matmuls(model)
        options["ignored_scope"] = nncf.IgnoredScope(names=ignored)
        details["layers_kept_float"] = ignored
    dataset = nncf.Dataset(list(calibration))
    with quiet_nncf():
        if attempt.accuracy_control:
            if validation is None:
                raise ValueError("accuracy control needs validation forms")
            quantized = nncf.quantize_with_accuracy_control(
                model,
                dataset,
                nncf.Dataset(list(validation.items), validation.transform),
                lambda compiled, items: (validation.metric(compiled, list(items)), None),
                max_drop=validation.max_drop,
                drop_type=nncf.DropType.ABSOLUTE,
                **options,
            )
            details["validation_forms"] = len(validation.items)
            details["max_drop"] = validation.max_drop
        else:
            quantized = nncf.quantize(model, dataset, **options)
    out_dir.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_dir / IR_FILE), compress_to_fp16=False)
    details["quantize_seconds"] = round(time.perf_counter() - started, 3)
    return details


def sensitive_matmuls(model: Any) -> list[str]:
    """The MatMuls to keep in floating point: attention output projections (by name) and the classifier,
    by name or as the MatMul that makes the logits (conversion can name it after the output, `logits`)."""
    import re

    def consumers(op: Any) -> list[Any]:
        return [target.get_node() for out in op.outputs() for target in out.get_target_inputs()]

    def makes_output(op: Any) -> bool:
        after = consumers(op)
        if any(c.get_type_name() == "Result" for c in after):
            return True
        return any(c.get_type_name() == "Add" and makes_output(c) for c in after)  # the classifier's bias

    return [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "MatMul"
        and (any(re.fullmatch(p, op.get_friendly_name()) for p in SENSITIVE_PATTERNS) or makes_output(op))
    ]


def ir_size(variant_dir: Path) -> int:
    """Bytes of the IR (graph .xml and weights .bin)."""
    return sum(p.stat().st_size for p in variant_dir.iterdir() if p.suffix in (".xml", ".bin"))
