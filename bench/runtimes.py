"""The runtimes and precisions a model is timed in, and how each becomes a prediction backend.

Every row goes through the project's one prediction API (`distill.predict.Backend`): PyTorch
through `TorchBackend`, ONNX Runtime through `export.runtime.OrtBackend`, so what is timed is
what users call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from distill.predict import Backend, TorchBackend

REFERENCE = "optimum-int8"  # the student quantised with optimum's defaults (bench/reference.py)


class Unavailable(Exception):
    """A runtime that cannot run here; the message is the reason the row is skipped."""


@dataclass(frozen=True)
class Runtime:
    name: str  # the id in test names and JSON
    label: str  # what the report prints
    engine: str  # torch | onnxruntime
    device: str  # cpu | cuda
    variant: str | None = None  # the ONNX variant of the export manifest
    dtype: str | None = None  # PyTorch dtype (None: the model's own fp32)
    limit: str = "fp32"  # the machine limit it is held against (bench/limits.py precisions)
    students_only: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.device == "cuda"


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("torch-fp32", "PyTorch fp32", "torch", "cpu"),
    Runtime("ort-fp32", "ORT fp32", "onnxruntime", "cpu", variant="fp32"),
    Runtime("ort-fp32-optimized", "ORT fp32 optimised", "onnxruntime", "cpu", variant="fp32-optimized"),
    Runtime("ort-int8", "ORT int8", "onnxruntime", "cpu", variant="int8", limit="int8"),
    Runtime(
        REFERENCE,
        "ORT int8, optimum defaults",
        "onnxruntime",
        "cpu",
        variant=REFERENCE,
        limit="int8",
        students_only=True,
    ),
    Runtime("torch-cuda-fp16", "PyTorch CUDA fp16", "torch", "cuda", dtype="float16", limit="cuda-fp16"),
    Runtime("torch-cuda-bf16", "PyTorch CUDA bf16", "torch", "cuda", dtype="bfloat16", limit="cuda-bf16"),
    Runtime("ort-cuda-fp16", "ORT CUDA fp16", "onnxruntime", "cuda", variant="fp16", limit="cuda-fp16"),
)
BY_NAME = {r.name: r for r in RUNTIMES}
BASELINE_RUNTIME = "torch-fp32"  # speed-ups are against the teacher in this runtime


def cuda_reason() -> str | None:
    """Why CUDA rows cannot run here (None when they can)."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def ort_cuda_reason() -> str | None:
    import onnxruntime as ort

    reason = cuda_reason()
    if reason:
        return reason
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider: install onnxruntime-gpu"
    return None


def check_available(runtime: Runtime) -> None:
    """Raise Unavailable with the reason when this machine cannot run `runtime`."""
    reason = (
        (ort_cuda_reason() if runtime.engine == "onnxruntime" else cuda_reason()) if runtime.is_cuda else None
    )
    if reason:
        raise Unavailable(reason)


def torch_backend(model: torch.nn.Module, runtime: Runtime, threads: int) -> Backend:
    torch.set_num_threads(threads)
    dtype = getattr(torch, runtime.dtype) if runtime.dtype else None
    return TorchBackend(model, runtime.device, dtype)


def onnx_backend(path: Path, runtime: Runtime, threads: int) -> Backend:
    from export.runtime import OrtBackend

    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"] if runtime.is_cuda else ["CPUExecutionProvider"]
    )
    backend = OrtBackend(path, providers=providers, intra_op_threads=threads)
    if runtime.is_cuda and "CUDAExecutionProvider" not in backend.session.get_providers():
        raise Unavailable("onnxruntime fell back to the CPU for the CUDA provider (see its log for why)")
    return backend
