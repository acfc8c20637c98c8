"""`load_predictor(path)`: a `Predictor` for whatever kind of model directory `path` is.

The one entry point users, the CLI and the bench share: a fine-tuned PyTorch directory (a run's
`student/` or `teacher/`), an exported ONNX variant (`onnx/<model>/<variant>/model.onnx`) or an
exported OpenVINO variant (`onnx/<model>/openvino*/openvino_model.xml`).
Anything else is refused with one line naming the directory.
"""

from __future__ import annotations

from pathlib import Path

from distill.errors import DistillError
from distill.predict.predictor import Predictor

ONNX_FILE = "model.onnx"
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


def load_predictor(
    path: str | Path, max_length: int = 512, stride: int = 128, batch_size: int = 8
) -> Predictor:
    """A Predictor over the model in `path`, windowed with `max_length` / `stride`."""
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
