"""The run directory as the bench sees it: its models, their ONNX variants, and their known scores.

Scores come from the run's own files: PyTorch F1 from metrics.json, each ONNX variant's F1
from the export manifest. Where a figure is missing, the end-to-end case recomputes it
(it predicts the whole test split anyway) with the same word merge and scorer.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from bench.runtimes import REFERENCES, Runtime
from distill.config import TrainConfig
from distill.errors import DistillError
from distill.run_dir import METRICS, model_dirs, read_config

MANIFEST = Path("onnx") / "manifest.json"
TIMING_ONLY_KEY = "timing_only"
TIMING_ONLY_NOTE = "timing only, F1 not meaningful"
_NOT_MODELS = {"onnx", "checkpoints"}


@dataclass
class ModelEntry:
    name: str
    path: Path
    config: PretrainedConfig
    record: dict[str, Any] = field(default_factory=dict)  # metrics.json's figures for this model

    @property
    def model_type(self) -> str:
        return self.config.model_type


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DistillError(f"not valid JSON: {err}", path) from err


def discover_models(run: Path) -> dict[str, Path]:
    """teacher, student, student-baseline first, then any other model directory (a layout student...)."""
    found = dict(model_dirs(run))
    for child in sorted(run.iterdir()):
        if (
            child.is_dir()
            and child.name not in _NOT_MODELS
            and child.name not in found
            and (child / "config.json").is_file()
        ):
            found[child.name] = child
    return found


def manifest_variant(manifest: dict[str, Any], model: str, variant: str) -> dict[str, Any]:
    """One variant's record in onnx/manifest.json ({} when absent).

    Accepts {"models": {m: {"variants": {v: {...}}}}} and the flatter {"models": {m: {v: {...}}}}.
    """
    models = manifest.get("models", manifest)
    entry = models.get(model, {}) if isinstance(models, dict) else {}
    variants = entry.get("variants", entry) if isinstance(entry, dict) else {}
    record = variants.get(variant, {}) if isinstance(variants, dict) else {}
    return record if isinstance(record, dict) else {}


class Catalog:
    """Models, ONNX files and scores of one run directory."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.config: TrainConfig = read_config(run)
        self.metrics = _read_json(run / METRICS)
        self.manifest = _read_json(run / MANIFEST)
        raw = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
        # The flag lives in config.toml once TrainConfig has it; metrics.json carries it meanwhile.
        self.timing_only = bool(raw.get(TIMING_ONLY_KEY) or self.metrics.get(TIMING_ONLY_KEY))
        records = self.metrics.get("models", {})
        self.models: dict[str, ModelEntry] = {
            name: ModelEntry(name, path, AutoConfig.from_pretrained(path), records.get(name, {}))
            for name, path in discover_models(run).items()
        }
        if not self.models:
            raise DistillError(
                "no trained model in this run directory: run `python -m distill.train` first", run
            )

    def not_built(self, model: str, variant: str) -> str | None:
        """Why the export could not build this variant (onnx/manifest.json `not_built`), or None."""
        failed = self.manifest.get("models", {}).get(model, {}).get("not_built", {}).get(variant)
        return failed["error"] if failed else None

    def onnx_path(self, model: str, variant: str) -> Path | None:
        """The variant's model file: the manifest's path, else the layout DESIGN.md fixes."""
        record = manifest_variant(self.manifest, model, variant)
        candidates = [record.get("path"), record.get("file"), Path("onnx") / model / variant / "model.onnx"]
        for candidate in candidates:
            if candidate:
                path = Path(candidate)
                path = path if path.is_absolute() else self.run / path
                if path.is_file():
                    return path
        return None

    def size_bytes(self, model: str, runtime: Runtime) -> int | None:
        if runtime.engine == "torch":
            entry = self.models[model]
            size = entry.record.get("size_bytes")
            if size is None:
                weights = [p for p in entry.path.iterdir() if p.suffix in {".safetensors", ".bin"}]
                size = sum(p.stat().st_size for p in weights) or None
            return size
        if runtime.variant is None or runtime.variant in REFERENCES:
            return None
        record = manifest_variant(self.manifest, model, runtime.variant)
        size = record.get("size_bytes", record.get("size"))
        if size is None:
            path = self.onnx_path(model, runtime.variant)
            size = onnx_size(path) if path else None
        return int(size) if size is not None else None

    def known_f1(self, model: str, runtime: Runtime) -> float | None:
        """F1 on the test split as the run's files state it (None: recompute)."""
        if runtime.engine == "torch":
            if runtime.dtype is not None:  # fp16/bf16 were never scored by the trainer
                return None
            # The export scored PyTorch beside its variants (same data, same code): prefer it.
            pytorch = self.manifest.get("models", {}).get(model, {}).get("pytorch", {})
            value = pytorch.get("f1", self.models[model].record.get("f1"))
        else:
            record = manifest_variant(self.manifest, model, runtime.variant or "")
            value = record.get("f1")
            if isinstance(record.get("scores"), dict):
                value = record["scores"].get("f1", value)
        return float(value) if isinstance(value, int | float) else None

    def f1_forms(self, model: str, runtime: Runtime) -> int | None:
        """How many test forms (the split's first N) the stated F1 covers; None: the whole split."""
        if runtime.engine == "torch" and runtime.dtype is None:
            pytorch = self.manifest.get("models", {}).get(model, {}).get("pytorch", {})
            if "f1" not in pytorch:
                return None  # metrics.json: the trainer scores the whole evaluation split
        entry = self.manifest.get("models", {}).get(model, {})
        forms = (
            entry.get("exported", {}).get("eval", {}).get("forms", self.manifest.get("eval", {}).get("forms"))
        )
        return int(forms) if isinstance(forms, int) else None

    def int8_isa(self, model: str) -> str | None:
        """The instruction set the model's int8 variant was chosen and timed for (None: unknown)."""
        from export.isa import int8_isa

        entry = self.manifest.get("models", {}).get(model, {})
        int8 = entry.get("variants", {}).get("int8", {})
        machine = entry.get("exported", {}).get("machine") or self.manifest.get("machine") or {}
        if int8.get("isa"):
            return str(int8["isa"])
        if machine.get("int8_isa"):
            return str(machine["int8_isa"])
        if machine.get("int8_features"):  # manifests from before the ISA was recorded
            return int8_isa(machine["int8_features"], "x86_64")
        return None

    def params(self, model: str) -> int | None:
        entry = self.models[model]
        if entry.record.get("params") is not None:
            return int(entry.record["params"])
        return count_params(entry.path)


def onnx_size(path: Path) -> int:
    """An ONNX model's bytes, external weight files beside it included (an OpenVINO IR: its .xml and .bin)."""
    if path.suffix == ".xml":
        return sum(p.stat().st_size for p in (path, path.with_suffix(".bin")) if p.is_file())
    return sum(
        p.stat().st_size
        for p in path.parent.iterdir()
        if p.is_file() and (p == path or p.name.startswith(path.name))
    )


def count_params(model_dir: Path) -> int | None:
    """Parameters from the safetensors headers (no weights loaded); None without safetensors files."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(file, framework="np") as handle:
            for key in handle.keys():
                shape = handle.get_slice(key).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                total += count
    return total
