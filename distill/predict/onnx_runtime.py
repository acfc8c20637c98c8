"""ONNX Runtime as a prediction backend: the same `predict_word_logits` runs PyTorch or ONNX models.

It lives in `distill` (not `export`) so that `python -m distill.predict` can serve exported variants
while the arrows still run one way: bench -> export -> distill.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
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
    """True when a CUDA session of this onnxruntime really runs on the CUDA provider (cuda_problem)."""
    return cuda_problem() is None


@functools.cache
def cuda_problem() -> str | None:
    """Why onnxruntime cannot run on CUDA here, with its loader's own words (None: it can).

    `get_available_providers()` lists CUDAExecutionProvider whenever onnxruntime-gpu is installed,
    even with no device and none of the CUDA 13 / cuDNN 9 libraries it loads; a session then falls
    back to the CPU with a line on stderr. So a one-node session is opened on the CUDA provider and
    asked which providers it got, and onnxruntime's own error lines are what the reason quotes.
    """
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            f"this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider: "
            "onnxruntime-gpu is the build that has one"
        )
    preload_cuda_libraries()
    error = ""
    with captured_stderr() as log:
        try:
            session = ort.InferenceSession(
                _identity_model(), providers=[("CUDAExecutionProvider", {"device_id": 0}), *cpu_providers()]
            )
            providers = session.get_providers()
        except Exception as err:  # onnxruntime raises its own types for a provider that fails to start
            providers, error = [], str(err)
    if "CUDAExecutionProvider" in providers:
        return None
    return "onnxruntime's CUDA provider did not load: " + loader_error("".join(log) + "\n" + error)


def loader_error(log: str) -> str:
    """The gist of onnxruntime's log about a CUDA provider that did not start, in one line.

    It says which library failed to load and why ("libonnxruntime_providers_cuda.so:
    libcublasLt.so.13: cannot open shared object file"), then which CUDA and cuDNN it requires;
    any other error or warning line is quoted as it is.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", log)
    parts = []
    for library, why in re.findall(r"Failed to load library (\S+) with error: ([^\n]+)", text):
        parts.append(f"{Path(library).name}: {why.strip()}")
    required = re.search(r"Require (cuDNN [^ ]+ and CUDA [^ .]+(?:\.\*)?)", text)
    if required:
        parts.append(f"it requires {required[1]}")
    if not parts:  # another failure: the last error or warning line, without its source location
        lines = [line for line in text.splitlines() if re.search(r"\[[EW]:onnxruntime|Error|error", line)]
        parts = [re.sub(r"^.*?\] ", "", lines[-1]).strip()] if lines else ["onnxruntime logged no reason"]
    return "; ".join(parts)[:500]


def preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries the CUDA provider needs from where PyTorch's CUDA build has them.

    onnxruntime-gpu links to libcublasLt.so.13, libcudnn.so.9 ... but ships none; a CUDA build of
    PyTorch brings them as nvidia-* wheels, and `preload_dlls()` (onnxruntime >= 1.21) loads them
    from there. Only on a CUDA build of torch: elsewhere it would print a failure for each library.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if torch.version.cuda and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """What native code writes to file descriptor 2 inside the block (onnxruntime logs there, not to sys.stderr)."""
    found: list[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield found
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            found.insert(0, sink.read().decode("utf-8", "replace"))


def _identity_model() -> bytes:
    from onnx import TensorProto, helper

    value = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "cuda-probe",
        value,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # loads in every onnxruntime from 1.15 on
    return model.SerializeToString()


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
