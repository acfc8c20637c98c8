"""The export's shared types: the variant names, options, evaluation data, a rung that could not build."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import DistillError
from distill.labels import LabelSet
from distill.predict import (
    OrtBackend,
    cpu_providers,
)
from export import openvino_ir
from export.quantize import ATTEMPTS

VARIANTS = ("fp32", "fp32-optimized", "int8", "fp16", "openvino", "openvino-int8")


ONNX_DIR = "onnx"


def rung_error(err: DistillError, folder: Path) -> str:
    """A rung's error as the manifest keeps it: a file in the rung's scratch folder (gone once the export
    ends, and a path of this machine) named by its file name only."""
    if err.path is not None and (err.path == folder or folder in err.path.parents):
        return f"{err.path.relative_to(folder)}: {err.message}"
    return str(err)


class NotBuilt(DistillError):
    """A variant none of whose rungs could be built: the model's other variants are still exported."""

    def __init__(self, message: str, attempts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass
class ExportOptions:
    variants: Sequence[str] = VARIANTS
    int8_budget: float = 1.0  # F1 points an int8 variant may lose against PyTorch fp32
    int8_attempts: Sequence[str] = tuple(ATTEMPTS)
    openvino_attempts: Sequence[str] = tuple(openvino_ir.ATTEMPTS)
    atol: float | None = None  # fp32 parity bound; None: validate.tolerance_for(model)
    batch_size: int = 8
    parity_windows: int = 64
    calibration_windows: int = 64
    latency_repeats: int = 10
    opset: int | None = None


@dataclass
class EvalData:
    """The run's forms as plain dicts (tokens, bboxes, image, ner_tags), decoded once for every model.

    `gate_forms` are perturbed copies of training forms held out of calibration: the int8 and fp16
    gates choose on them, so the test split is scored once, for the variant kept, and never picks.
    """

    test_forms: list[dict[str, Any]]
    train_forms: list[dict[str, Any]]
    max_length: int
    stride: int
    split: str = (
        "test"  # "test", or "held-out" for a --holdout-forms run (its scored forms are training forms)
    )
    gate_forms: list[dict[str, Any]] = field(default_factory=list)
    gate_source: str = ""  # what the gate forms are, e.g. "perturbed copies of 16 training forms ..."
    labels: LabelSet | None = None  # the run's labels (None: the model's own id2label)
    # Accuracy control's validation forms: perturbed copies of calibration forms (never gate or scored forms).
    validation_forms: list[dict[str, Any]] = field(default_factory=list)
    split_text: str = ""  # the scored forms in words ("the test split", "30 held-out training forms ...")

    @property
    def scored(self) -> str:
        """The forms every variant is scored on, in words (one wording for the manifest and the report)."""
        return self.split_text or f"the {self.split} split"

    @property
    def gate_split(self) -> str:
        """The gate's forms in words, for the manifest and the report (one wording for both)."""
        if self.gate_forms:
            return f"{len(self.gate_forms)} {self.gate_source}"
        return f"{self.scored} (no training forms to hold out)"


def file_size(variant_dir: Path) -> int:
    """Bytes of the model: the ONNX graph and any external-data files beside it, or the OpenVINO IR."""
    return sum(
        p.stat().st_size
        for p in variant_dir.iterdir()
        if p.suffix in (".onnx", ".onnx_data", ".data", ".xml", ".bin") and p.name != "training_args.bin"
    )


def loads_on_cpu(path: Path) -> bool | str:
    """True when a CPU session loads the graph (a GPU-only graph would not): else onnxruntime's reason."""
    try:
        OrtBackend(path, providers=cpu_providers())
    except DistillError as err:
        return str(err)
    return True
