"""The runtimes and precisions a model is timed in, and how each becomes a prediction backend.

Every row goes through the project's one prediction API (`distill.predict.Backend`): PyTorch
through `TorchBackend` (bf16 rows under `torch.autocast`), ONNX Runtime through
`distill.predict.OrtBackend`, OpenVINO through `distill.predict.OvBackend`, so what is timed is what
users call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.predict import Backend, TorchBackend, select_inputs

REFERENCE = "optimum-int8"  # the student quantised with optimum's defaults (bench/reference.py)
OV_REFERENCE = "openvino-nncf-defaults"  # ... and with OpenVINO + NNCF's out-of-the-box defaults
REFERENCES = (REFERENCE, OV_REFERENCE)


class Unavailable(Exception):
    """A runtime that cannot run here; the message is the reason the row is skipped."""


@dataclass(frozen=True)
class Runtime:
    name: str  # the id in test names and JSON
    label: str  # what the report prints
    engine: str  # torch | onnxruntime | openvino
    device: str  # cpu | cuda
    variant: str | None = None  # the ONNX variant of the export manifest
    dtype: str | None = None  # PyTorch dtype (None: the model's own fp32)
    limit: str = "fp32"  # the machine limit it is held against (bench/limits.py precisions)
    students_only: bool = False
    autocast: bool = False  # PyTorch: fp32 weights, matmuls in `dtype` under torch.autocast (CPU bf16)

    @property
    def is_cuda(self) -> bool:
        return self.device == "cuda"


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("torch-fp32", "PyTorch fp32", "torch", "cpu"),
    Runtime(
        "torch-bf16", "PyTorch bf16 autocast", "torch", "cpu", dtype="bfloat16", limit="bf16", autocast=True
    ),
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
    # OpenVINO's float precision is the CPU plugin's default (bf16 where native): each row's `float_precision`
    # says which, and its limit follows it (bench/report_tables.py limit_mix).
    Runtime("ov", "OpenVINO, CPU default precision", "openvino", "cpu", variant="openvino"),
    Runtime("ov-int8", "OpenVINO int8 (NNCF)", "openvino", "cpu", variant="openvino-int8", limit="int8"),
    Runtime(
        OV_REFERENCE,
        "OpenVINO int8, NNCF defaults",
        "openvino",
        "cpu",
        variant=OV_REFERENCE,
        limit="int8",
        students_only=True,
    ),
    Runtime("torch-cuda-fp32", "PyTorch CUDA fp32", "torch", "cuda", limit="cuda-fp32"),
    Runtime("torch-cuda-fp16", "PyTorch CUDA fp16", "torch", "cuda", dtype="float16", limit="cuda-fp16"),
    Runtime("torch-cuda-bf16", "PyTorch CUDA bf16", "torch", "cuda", dtype="bfloat16", limit="cuda-bf16"),
    Runtime(
        "ort-cuda-fp32", "ORT CUDA fp32", "onnxruntime", "cuda", variant="fp32-optimized", limit="cuda-fp32"
    ),
    Runtime("ort-cuda-fp16", "ORT CUDA fp16", "onnxruntime", "cuda", variant="fp16", limit="cuda-fp16"),
)
BY_NAME = {r.name: r for r in RUNTIMES}
# The export's CPU variants and the rows that run them (the headline follows the manifest's recommendation).
VARIANT_RUNTIME = {
    "fp32": "ort-fp32",
    "fp32-optimized": "ort-fp32-optimized",
    "int8": "ort-int8",
    "openvino": "ov",
    "openvino-int8": "ov-int8",
}
BASELINE_RUNTIME = "torch-fp32"  # speed-ups are against the teacher in this runtime
GPU_BASELINE_RUNTIME = "torch-cuda-fp32"  # ... and GPU rows against the teacher in this one


def cuda_reason() -> str | None:
    """Why PyTorch CUDA rows cannot run here (None when they can): PyTorch alone decides."""
    if torch.version.cuda is None:
        return f"CPU-only torch build ({torch.__version__}: torch.version.cuda is None)"
    if not torch.cuda.is_available():
        try:
            torch.cuda.init()
            why = "torch.cuda.is_available() is False"
        except Exception as err:  # the driver's or runtime's own words
            why = str(err).splitlines()[0][:300]
        return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device: {why}"
    return None


def ort_cuda_reason() -> str | None:
    """Why ONNX Runtime CUDA rows cannot run here (None when they can): onnxruntime alone decides,
    with a one-node CUDA session, so a provider that is listed but fails to load is named with its error."""
    from distill.predict.onnx_runtime import cuda_problem

    return cuda_problem()


def cpu_bf16_reason() -> str | None:
    """Why PyTorch bf16 on this CPU would be emulated (the row is skipped then), None where it is native."""
    from distill.hardware import bf16_refusal, cpu_features

    reason = bf16_refusal(*cpu_features())
    return f"no native bf16 here: {reason}" if reason else None


def check_available(runtime: Runtime) -> None:
    """Raise Unavailable with the reason when this machine cannot run `runtime`."""
    reason = (
        (ort_cuda_reason() if runtime.engine == "onnxruntime" else cuda_reason()) if runtime.is_cuda else None
    )
    if runtime.autocast and not runtime.is_cuda:
        reason = cpu_bf16_reason()
    if reason:
        raise Unavailable(reason)


class AutocastBackend(TorchBackend):
    """PyTorch with fp32 weights and its matmuls in `dtype` under torch.autocast (CPU bf16): what
    `--bf16` trains with, and how a user serves bf16 without converting the model."""

    def __init__(self, model: torch.nn.Module, device: str, dtype: torch.dtype) -> None:
        super().__init__(model, device)
        self.autocast_dtype = dtype

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return super().__call__(batch)


def torch_backend(model: torch.nn.Module, runtime: Runtime, threads: int) -> Backend:
    torch.set_num_threads(threads)
    if runtime.is_cuda:
        plain_fp32()
    dtype = getattr(torch, runtime.dtype) if runtime.dtype else None
    if runtime.autocast and dtype is not None:
        return AutocastBackend(model, runtime.device, dtype)
    return TorchBackend(model, runtime.device, dtype)


def plain_fp32() -> None:
    """fp32 on CUDA means IEEE fp32 in every row and in the fp32 limit, never TF32.

    PyTorch's matmuls default to plain fp32, but cuDNN convolutions (LayoutLMv3's patch
    embedding) default to TF32; ONNX Runtime's CUDA provider runs fp32 GEMMs in TF32 unless told
    otherwise (CUDA_PROVIDER_OPTIONS' use_tf32).
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


# ONNX Runtime's CUDA provider options for every CUDA row: plain fp32 (see plain_fp32).
CUDA_PROVIDER_OPTIONS = {"device_id": 0, "use_tf32": 0}


def openvino_backend(path: Path, threads: int) -> Backend:
    """An OpenVINO IR on the CPU at the plugin's default precision, pinned to the bench's threads."""
    from distill.predict import OvBackend

    return OvBackend(path, threads=threads)


def float_precision(backend: Backend, runtime: Runtime) -> str:
    """The precision a row's floating-point (non-int8) work runs in: its limit's precision (fp32 or bf16)."""
    if runtime.engine == "openvino":
        return "bf16" if getattr(backend, "precision", "f32") == "bf16" else "fp32"
    if runtime.autocast and runtime.dtype == "bfloat16":
        return "bf16"
    return "fp32"


class CudaOrtBackend:
    """ONNX Runtime on CUDA through I/O binding (implements Backend).

    `session.run` with numpy feeds copies every input to the device and the output back inside
    the timed call, through pageable memory. Here inputs are bound as device OrtValues and the
    logits stay on the device: `bind` once and `run_bound` times the model alone (the latency
    matrix); `__call__` binds per call and copies the logits back (end to end, what a user pays).
    """

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        from distill.predict.onnx_runtime import _ORT_DTYPES, preload_cuda_libraries

        preload_cuda_libraries()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(path),
            options,
            providers=[("CUDAExecutionProvider", dict(CUDA_PROVIDER_OPTIONS)), "CPUExecutionProvider"],
        )
        self.providers = self.session.get_providers()
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._dtypes = {i.name: _ORT_DTYPES.get(i.type) for i in self.session.get_inputs()}
        self.output_name = self.session.get_outputs()[0].name

    def bind(self, batch: dict[str, np.ndarray]) -> Any:
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, value in select_inputs(batch, self.input_names).items():
            array = np.ascontiguousarray(value, dtype=self._dtypes.get(name))
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
        binding.bind_output(self.output_name, "cuda", 0)
        return binding

    def run_bound(self, binding: Any) -> None:
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()  # the call is over when the device is done, not when it was queued

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        binding = self.bind(batch)
        self.run_bound(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)


def device_call(backend: Backend, batch: dict[str, np.ndarray]) -> Callable[[], Any]:
    """A zero-argument call of the model on `batch` for the latency matrix.

    CPU rows call the backend as users do. CUDA rows get their inputs on the device beforehand and
    wait for the device to finish: the model is timed, not the host-to-device copy of the batch.
    """
    if isinstance(backend, CudaOrtBackend):
        binding = backend.bind(batch)
        return lambda: backend.run_bound(binding)
    if isinstance(backend, TorchBackend) and backend.device.type == "cuda":
        inputs = backend.tensors(batch)

        @torch.inference_mode()
        def run() -> Any:
            logits = backend.model(**inputs).logits
            torch.cuda.synchronize()
            return logits

        return run
    return lambda: backend(batch)


def onnx_backend(
    path: Path, runtime: Runtime, threads: int, probe: dict[str, np.ndarray] | None = None
) -> Backend:
    """The ONNX model in this runtime. CUDA rows: through I/O binding, and refused (Unavailable)
    when onnxruntime fell back to the CPU, for the provider or, on `probe`, for compute nodes."""
    from distill.predict import OrtBackend

    if not runtime.is_cuda:
        return OrtBackend(path, providers=["CPUExecutionProvider"], intra_op_threads=threads)
    backend = CudaOrtBackend(path, threads)
    if "CUDAExecutionProvider" not in backend.providers:
        from distill.predict.onnx_runtime import cuda_problem

        why = cuda_problem() or "see its log for why"
        raise Unavailable(f"onnxruntime fell back to the CPU for the CUDA provider ({why})")
    if probe is not None:
        from bench.placement import profile_nodes, refusal

        feed = {
            n: np.ascontiguousarray(v, dtype=backend._dtypes.get(n))
            for n, v in select_inputs(probe, backend.input_names).items()
        }
        tokens = int(np.prod(probe["input_ids"].shape))
        providers = [("CUDAExecutionProvider", dict(CUDA_PROVIDER_OPTIONS)), "CPUExecutionProvider"]
        why = refusal(profile_nodes(path, providers, feed, threads), tokens)
        if why:
            raise Unavailable(f"onnxruntime ran work on the CPU in a CUDA session ({why}): not a GPU timing")
    return backend
