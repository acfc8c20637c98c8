"""ONNX Runtime as a prediction backend: the same `predict_word_logits` runs PyTorch or ONNX models.

It lives in `distill` (not `export`) so that `python -m distill.predict` can serve exported variants
while the arrows still run one way: bench -> export -> distill.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from distill.errors import DistillError
from distill.predict.predictor import Predictor, id2label_list, select_inputs
from distill.windows import WindowEncoder

# ONNX element types -> the numpy dtype a feed must have (windows come as int64 / float32).
_ORT_DTYPES = {
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}


def cpu_providers() -> list[str]:
    return ["CPUExecutionProvider"]


def cuda_usable() -> bool:
    """True when onnxruntime has the CUDA provider *and* a session can actually use it.

    onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU; torch tells
    whether a device is really present.
    """
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


class OrtBackend:
    """An ONNX token-classification model in an `onnxruntime.InferenceSession` (implements Backend).

    `providers` defaults to the CPU; pass e.g. ["CUDAExecutionProvider", "CPUExecutionProvider"].
    `intra_op_threads` pins the thread count (benchmarks want it fixed and printed).
    """

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DistillError("no such ONNX model: run `python -m export.onnx` first", self.path)
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=list(providers or cpu_providers())
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise DistillError(
                f"onnxruntime could not load the model ({str(err).splitlines()[0][:300]})", self.path
            ) from err
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._dtypes = {i.name: _ORT_DTYPES.get(i.type) for i in self.session.get_inputs()}
        self.output_name = self.session.get_outputs()[0].name  # token classification: `logits`
        self.providers = self.session.get_providers()

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {}
        for name, value in select_inputs(batch, self.input_names).items():
            dtype = self._dtypes.get(name)
            feed[name] = np.ascontiguousarray(value, dtype=dtype) if dtype is not None else value
        (logits,) = self.session.run([self.output_name], feed)
        return np.asarray(logits, dtype=np.float32)  # fp16 models answer in fp16: score in fp32


def onnx_predictor(
    variant_dir: str | Path,
    max_length: int = 512,
    stride: int = 128,
    providers: Sequence[str] | None = None,
    intra_op_threads: int | None = None,
    batch_size: int = 8,
) -> Predictor:
    """The prediction API over an exported variant: `onnx_predictor(run/"onnx/student/int8").predict(words)`.

    The variant directory holds model.onnx with the model's config and tokenizer (and, for the
    teacher, its image processor), so nothing of the PyTorch run is needed. Use the run's
    max_length and stride (config.toml) to reproduce its windows.
    """
    from distill.models import load_preprocessing

    variant_dir = Path(variant_dir)
    backend = OrtBackend(variant_dir / "model.onnx", providers=providers, intra_op_threads=intra_op_threads)
    model_type, tokenizer, image_processor = load_preprocessing(variant_dir)
    encoder = WindowEncoder.for_model(
        model_type, tokenizer, image_processor, max_length=max_length, stride=stride
    )
    from transformers import AutoConfig

    labels = id2label_list(AutoConfig.from_pretrained(variant_dir))  # the exported model's own tags
    return Predictor(encoder, backend, labels, batch_size=batch_size)
