"""`load_predictor(path)`: a `Predictor` for whatever kind of model directory `path` is.

The one entry point users, the CLI and the bench share: a fine-tuned PyTorch directory (a run's
`student/` or `teacher/`), an exported ONNX variant (`onnx/<model>/<variant>/model.onnx`), an
exported OpenVINO variant (`onnx/<model>/openvino*/openvino_model.xml`), or a run directory, which
serves the student variant its export recommends for a CPU. The windows (max_length, stride) and the
box mode are the ones the model's run recorded (`serving`).
Anything else is refused with one line naming the directory.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.errors import DistillError
from distill.predict.predictor import Predictor

ONNX_FILE = "model.onnx"
RUN_CONFIG = "config.toml"  # distill.run_dir.CONFIG (not imported: that module pulls in datasets)
MANIFEST = "manifest.json"  # under <run>/onnx/, written by `python -m export.onnx`
DEFAULT_WINDOWS = (512, 128)  # TrainConfig's defaults, for a model without its run beside it
OPENVINO_FILE = (
    "openvino_model.xml"  # distill.predict.openvino_runtime.IR_FILE (not imported: openvino loads slowly)
)


def model_kind(path: str | Path) -> str:
    """'onnx', 'openvino' or 'torch' for a directory that holds such a model; DistillError otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise DistillError("no such model directory", path)
    if (path / ONNX_FILE).is_file():
        return "onnx"
    if (path / OPENVINO_FILE).is_file():
        return "openvino"
    if (path / "config.json").is_file() and (any(path.glob("*.safetensors")) or any(path.glob("*.bin"))):
        return "torch"
    raise DistillError(
        "not a model directory (no model.onnx, openvino_model.xml or config.json with weights): pass a run's "
        "student/ or teacher/, or an exported variant under onnx/",
        path,
    )


@dataclass(frozen=True)
class Serving:
    """Which model directory serves a MODEL argument, and what its run recorded about its inputs."""

    path: Path  # the model directory (PyTorch or an exported variant)
    chosen: str  # how it was chosen, for the user
    max_length: int
    stride: int
    word_boxes: bool  # trained with each word's own box (else its segment's)
    settings_from: str  # the file the three settings above come from, or "defaults ..."


def recommended_cpu_variant(run: Path, model: str = "student") -> tuple[Path, str] | None:
    """The variant directory the export recommends for a CPU, and its name; None when not exported.

    Today's manifest (export/pipeline.py `recommend`): models.<model>.recommended_cpu names a
    variant, models.<model>.variants.<variant>.path its model file relative to the run.
    """
    manifest = run / "onnx" / MANIFEST
    if not manifest.is_file():
        return None
    entry = _json(manifest).get("models", {}).get(model, {})
    variant = entry.get("recommended_cpu")
    if not variant:
        return None
    file = entry.get("variants", {}).get(variant, {}).get("path")
    folder = (run / file).parent if file else run / "onnx" / model / variant
    return (folder, variant) if folder.is_dir() else None


def serving(path: str | Path) -> Serving:
    """The model a MODEL argument names (a run directory: its student's recommended CPU variant, else
    its PyTorch student) with the max_length, stride and box mode of the run that trained it."""
    path = Path(path)
    chosen = "as given"
    if path.is_dir() and (path / RUN_CONFIG).is_file() and not (path / "config.json").is_file():
        found = recommended_cpu_variant(path)
        if found is not None:
            path, chosen = found[0], f"the export's recommended CPU variant of the student: {found[1]}"
        elif (path / "student").is_dir():
            path, chosen = path / "student", "the run's PyTorch student (no export recommends a variant)"
        else:
            raise DistillError("a run directory without a student/ model: pass a model directory", path)
    model_kind(path)
    values, source = run_settings(path)
    return Serving(
        path,
        chosen,
        int(values.get("max_length", DEFAULT_WINDOWS[0])),
        int(values.get("stride", DEFAULT_WINDOWS[1])),
        bool(values.get("word_boxes", False)),
        source,
    )


def run_settings(model_dir: Path) -> tuple[dict[str, Any], str]:
    """max_length, stride and word_boxes of the run a model directory belongs to, and the file they came from.

    A run's model is <run>/<model>, an exported variant <run>/onnx/<model>/<variant>: the run's
    config.toml first; for a variant moved away from its run, the manifest beside it (windows only).
    """
    model_dir = model_dir.resolve()
    parents = model_dir.parents
    candidates = [model_dir.parent]
    if len(parents) > 2 and parents[1].name == "onnx":
        candidates.insert(0, parents[2])
    for run in candidates:
        if (run / RUN_CONFIG).is_file():
            try:
                values = tomllib.loads((run / RUN_CONFIG).read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as err:
                raise DistillError(f"not valid TOML: {err}", run / RUN_CONFIG) from err
            return values, str(run / RUN_CONFIG)
    manifest = model_dir.parent.parent / MANIFEST
    if manifest.is_file():
        entry = _json(manifest).get("models", {}).get(model_dir.parent.name, {})
        windows = entry.get("exported", {}).get("eval") or _json(manifest).get("eval") or {}
        if "max_length" in windows:
            return {k: windows[k] for k in ("max_length", "stride") if k in windows}, str(manifest)
    return {}, "defaults (no run config.toml beside the model)"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DistillError(f"not valid JSON: {err}", path) from err
    return data if isinstance(data, dict) else {}


def load_predictor(
    path: str | Path, max_length: int | None = None, stride: int | None = None, batch_size: int = 8
) -> Predictor:
    """A Predictor over the model `path` names (see `serving`), windowed as its run was unless
    `max_length` / `stride` are given."""
    served = serving(path)
    path = served.path
    max_length = max_length or served.max_length
    stride = served.stride if stride is None else stride
    kind = model_kind(path)
    if kind == "onnx":
        from distill.predict.onnx_runtime import onnx_predictor

        return onnx_predictor(path, max_length=max_length, stride=stride, batch_size=batch_size)
    if kind == "openvino":
        from distill.predict.openvino_runtime import openvino_predictor

        return openvino_predictor(path, max_length=max_length, stride=stride, batch_size=batch_size)
    predictor = Predictor.from_dir(path, max_length=max_length, stride=stride)
    predictor.batch_size = batch_size
    return predictor
