"""OpenVINO as a prediction backend: the same `predict_word_logits` runs an exported OpenVINO IR variant.

An IR directory (`openvino_model.xml` + `.bin`, the model's config and tokenizer beside them: the
layout optimum-intel's `OVModelForTokenClassification` reads) compiles for the CPU at the precision
the CPU plugin picks by default (bf16 where the CPU has it natively, else f32) unless `precision`
says otherwise; `OvBackend.precision` says which one it runs. Like onnx_runtime.py it lives in
`distill` so the prediction API and its CLI serve every exported variant without an arrow back from
`export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from distill.errors import DistillError
from distill.predict.predictor import Predictor, id2label_list, select_inputs
from distill.windows import WindowEncoder

IR_FILE = "openvino_model.xml"  # optimum-intel's name for the IR of a model directory
DEVICE = "CPU"


def compile_config(threads: int | None = None, precision: str | None = None) -> dict[str, Any]:
    """The CPU plugin's settings: one stream tuned for latency (a request runs alone, on every core it
    is given), the thread count when pinned, the inference precision when forced (None: the CPU's default)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def default_precision() -> str:
    """What this CPU's OpenVINO plugin computes floating-point layers in by default: 'bf16' or 'f32'."""
    import openvino as ov

    return ov.Core().get_property(DEVICE, "INFERENCE_PRECISION_HINT").get_type_name()


def reason(err: BaseException) -> str:
    """OpenVINO's message without its trace: it opens with "Exception from src/...cpp:N:" lines, one per
    layer it passed through, and the cause comes after them (a first line alone names no cause)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith("Exception from ")]
    return (" ".join(causes) or (lines[0] if lines else err.__class__.__name__))[:300]


class OvBackend:
    """An OpenVINO IR (or ONNX file) compiled for the CPU (implements Backend).

    `threads` pins INFERENCE_NUM_THREADS (benchmarks want it fixed); `precision` ('f32', 'bf16')
    overrides the plugin's default inference precision.
    """

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        precision: str | None = None,
        compiled: Any = None,
    ) -> None:
        self.path = Path(path)
        if compiled is None:
            import openvino as ov

            if not self.path.is_file():
                raise DistillError("no such OpenVINO model: run `python -m export.onnx` first", self.path)
            try:
                compiled = ov.Core().compile_model(str(self.path), DEVICE, compile_config(threads, precision))
            except Exception as err:  # OpenVINO raises RuntimeError with a multi-line trace
                raise DistillError(
                    f"OpenVINO could not compile the model ({reason(err)})", self.path
                ) from err
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.input_names = [port.get_any_name() for port in compiled.inputs]
        self._dtypes = {port.get_any_name(): port.get_element_type().to_dtype() for port in compiled.inputs}
        self.precision: str = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.threads: int = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        self.providers = [f"OpenVINO {DEVICE} ({self.precision})"]  # what ran it, as OrtBackend says

    @classmethod
    def from_compiled(cls, compiled: Any, path: str | Path = "<compiled>") -> OvBackend:
        """Wrap a model OpenVINO (or NNCF, validating a candidate) has compiled already."""
        return cls(path, compiled=compiled)

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {
            name: np.ascontiguousarray(value, dtype=self._dtypes.get(name))
            for name, value in select_inputs(batch, self.input_names).items()
        }
        self.request.infer(feed)
        # A copy: the request reuses its output buffer on the next call.
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)


def openvino_predictor(
    variant_dir: str | Path,
    max_length: int = 512,
    stride: int = 128,
    threads: int | None = None,
    batch_size: int = 8,
    precision: str | None = None,
) -> Predictor:
    """The prediction API over an exported OpenVINO variant (`onnx/<model>/openvino-int8/`).

    As `onnx_predictor`: the directory holds the model with its config and tokenizer (and, for the
    teacher, its image processor); use the run's max_length and stride (config.toml).
    """
    from transformers import AutoConfig

    from distill.models import load_preprocessing

    variant_dir = Path(variant_dir)
    backend = OvBackend(variant_dir / IR_FILE, threads=threads, precision=precision)
    model_type, tokenizer, image_processor = load_preprocessing(variant_dir)
    encoder = WindowEncoder.for_model(
        model_type, tokenizer, image_processor, max_length=max_length, stride=stride
    )
    labels = id2label_list(AutoConfig.from_pretrained(variant_dir))
    return Predictor(encoder, backend, labels, batch_size=batch_size)
