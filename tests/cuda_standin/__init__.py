"""A CUDA stand-in for CI: PyTorch and ONNX Runtime report a CUDA device while computing on the CPU.

Only tests use it. No GPU has ever run in CI, so without it every CUDA branch of the export and
the bench (the CUDA rows' backends, I/O binding, the placement check, the device-memory probes,
the GPU check's summary) would only ever be skipped. With it active those branches run their real
code on real models, and an exception in any of them fails the run; only the device underneath
is replaced:

- torch: a TorchFunctionMode moves every tensor bound for "cuda" to the CPU, and `torch.cuda`
  answers as one device named DEVICE_NAME: `is_available()` is True, `synchronize()` returns at
  once (CPU kernels are synchronous), `mem_get_info()` and `max_memory_allocated()` count this
  process's resident memory, so the memory probes measure something real.
- onnxruntime, where it is a build with a CUDA provider (onnxruntime-gpu: CI's; a CPU-only
  onnxruntime is left as it is, so the stand-in mirrors a machine such as the lent GPU machine whose
  onnxruntime has no CUDA provider): a session asked for CUDAExecutionProvider validates the
  provider options as the provider does, runs on the CPU provider and reports CUDA first in `get_providers()`; OrtValues
  and I/O bindings for "cuda" live in host memory (copied, as a device copy would be); a profiled
  call's nodes are relabelled CUDA except those the CUDA provider leaves on the CPU too: shape
  arithmetic (`Shape`, `Size`, integer nodes of a few elements), and the op types listed in
  DOCDISTILL_CUDA_STANDIN_CPU_OPS, which simulates a provider without kernels for them.

Nothing it reports is a GPU figure: the GPU name says so in every report. Activate it in-process
with `active()` (tests), or for whole processes with DOCDISTILL_CUDA_STANDIN=1 and SITE on
PYTHONPATH (its sitecustomize.py activates it in every Python process started so, the memory
probes' children included): what `bench/gpu_check.sh` does when that variable is set.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ENV = "DOCDISTILL_CUDA_STANDIN"
CPU_OPS_ENV = "DOCDISTILL_CUDA_STANDIN_CPU_OPS"
SITE = Path(__file__).resolve().parent / "site"
DEVICE_NAME = "CUDA stand-in (computes on the CPU)"
TOTAL_MEMORY = 64 * 1024**3
# A CPU is a slow GPU: the same cases at smaller sizes. The limit probe's square GEMM (8192^3 in fp16
# takes minutes on a CPU) and the latency matrix's sequence lengths: every case still runs.
GEMM_SIZE = 256
SEQ_LENGTHS = (16, 64)
SHAPE_ELEMENTS = 8  # integer tensors up to this size are shape arithmetic, left on the CPU
CPU_ONLY_OPS = {"Shape", "Size"}
# The CUDA provider's options (onnxruntime's CUDAExecutionProviderInfo); it refuses any other name.
CUDA_OPTIONS = {
    "device_id",
    "has_user_compute_stream",
    "user_compute_stream",
    "gpu_mem_limit",
    "arena_extend_strategy",
    "cudnn_conv_algo_search",
    "do_copy_in_default_stream",
    "gpu_external_alloc",
    "gpu_external_free",
    "gpu_external_empty_cache",
    "cudnn_conv_use_max_workspace",
    "enable_cuda_graph",
    "cudnn_conv1d_pad_to_nc1d",
    "tunable_op_enable",
    "tunable_op_tuning_enable",
    "tunable_op_max_tuning_duration_ms",
    "enable_skip_layer_norm_strict_mode",
    "prefer_nhwc",
    "use_ep_level_unified_stream",
    "use_tf32",
    "fuse_conv_bias",
    "sdpa_kernel",
}
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

_undo: list[Callable[[], None]] = []


def is_active() -> bool:
    return bool(_undo)


def activate() -> None:
    """Make this process's torch and onnxruntime report a CUDA device that computes on the CPU."""
    if _undo:
        return
    _patch_torch()
    _patch_onnxruntime()
    import bench.context
    import bench.limits

    _set(bench.limits, "GPU_GEMM_SIZE", GEMM_SIZE)
    _set(bench.context, "SEQ_LENGTHS", SEQ_LENGTHS)
    _clear_caches()


def deactivate() -> None:
    while _undo:
        _undo.pop()()
    _clear_caches()


@contextlib.contextmanager
def active() -> Iterator[None]:
    activate()
    try:
        yield
    finally:
        deactivate()


def _set(owner: Any, name: str, value: Any) -> None:
    missing = object()
    old = owner.__dict__.get(name, missing) if isinstance(owner, type) else getattr(owner, name, missing)

    def undo() -> None:
        if old is missing:
            delattr(owner, name)
        else:
            setattr(owner, name, old)

    setattr(owner, name, value)
    _undo.append(undo)


def _clear_caches() -> None:
    """Answers cached before the device changed (onnxruntime's CUDA check) would be stale."""
    import sys

    module = sys.modules.get("distill.predict.onnx_runtime")
    if module is not None:
        module.cuda_problem.cache_clear()


# --- torch ------------------------------------------------------------------------------------


def _patch_torch() -> None:
    import psutil
    import torch
    from torch.overrides import TorchFunctionMode

    process = psutil.Process()
    baseline = [process.memory_info().rss]  # from the "context's" creation on: torch.cuda.init()

    def init() -> None:
        baseline[0] = process.memory_info().rss

    def on_cpu(device: Any) -> Any:
        if isinstance(device, str) and device.startswith("cuda"):
            return "cpu"
        if isinstance(device, torch.device) and device.type == "cuda":
            return torch.device("cpu")
        return device

    class CpuForCuda(TorchFunctionMode):
        """Every "cuda" device argument of a torch call becomes the CPU."""

        def __torch_function__(
            self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
        ) -> Any:
            kwargs = dict(kwargs or {})
            if "device" in kwargs:
                kwargs["device"] = on_cpu(kwargs["device"])
            if func is torch.Tensor.cuda:
                return args[0].to("cpu")
            if func is torch.Tensor.to:
                args = (args[0], *(on_cpu(a) for a in args[1:]))
            return func(*args, **kwargs)

    def used() -> int:
        return max(0, process.memory_info().rss - baseline[0])

    def peak() -> int:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(0, int(line.split()[1]) * 1024 - baseline[0])
        except OSError:
            pass
        return used()

    cuda = torch.cuda
    replacements: dict[str, Any] = {
        "is_available": lambda: True,
        "device_count": lambda: 1,
        "current_device": lambda: 0,
        "set_device": lambda device: None,
        "init": init,
        "get_device_name": lambda device=None: DEVICE_NAME,
        "get_device_capability": lambda device=None: (9, 0),
        "is_bf16_supported": lambda *a, **k: True,
        "synchronize": lambda device=None: None,  # CPU kernels have finished when they return
        "empty_cache": lambda: None,
        "mem_get_info": lambda device=None: (TOTAL_MEMORY - used(), TOTAL_MEMORY),
        "max_memory_allocated": lambda device=None: peak(),
        "memory_allocated": lambda device=None: used(),
        "reset_peak_memory_stats": lambda device=None: None,
    }
    for name, value in replacements.items():
        _set(cuda, name, value)
    _set(torch.version, "cuda", "stand-in")
    mode = CpuForCuda()
    mode.__enter__()  # the mode stack is per thread: CUDA work in another thread fails loudly

    def leave() -> None:
        mode.__exit__(None, None, None)

    _undo.append(leave)


# --- onnxruntime ------------------------------------------------------------------------------


def _patch_onnxruntime() -> None:
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_inference_collection as collection

    if CUDA not in ort.get_available_providers():
        return  # a CPU-only onnxruntime: there is no CUDA provider to stand in for
    real_session = ort.InferenceSession
    real_make = collection.OrtDevice.make
    real_from_numpy = collection.OrtValue.ortvalue_from_numpy.__func__
    real_available = ort.get_available_providers

    def make(ort_device_name: str, device_id: int, vendor_id: int = -1) -> Any:
        if str(ort_device_name).lower() == "cuda":
            return real_make("cpu", 0)
        return real_make(ort_device_name, device_id, vendor_id)

    def from_numpy(
        cls: Any, numpy_obj: Any, /, device_type: str = "cpu", device_id: int = 0, *rest: Any
    ) -> Any:
        if str(device_type).lower() == "cuda":  # a device copy: later changes to the array do not reach it
            return real_from_numpy(cls, np.array(numpy_obj, copy=True), "cpu", 0)
        return real_from_numpy(cls, numpy_obj, device_type, device_id, *rest)

    class StandinSession(real_session):  # type: ignore[misc, valid-type]
        """A session asked for CUDA: the CPU provider computes, CUDA is reported."""

        def __init__(
            self,
            path_or_bytes: Any,
            sess_options: Any = None,
            providers: Any = None,
            provider_options: Any = None,
            **kwargs: Any,
        ) -> None:
            names = [p[0] if isinstance(p, tuple) else p for p in (providers or [])]
            self.standin_cuda = CUDA in names
            self.cuda_options: dict[str, Any] = {}
            if self.standin_cuda:
                entry = providers[names.index(CUDA)]
                options = dict(entry[1]) if isinstance(entry, tuple) else {}
                if provider_options:
                    options.update(provider_options[names.index(CUDA)])
                unknown = sorted(set(options) - CUDA_OPTIONS)
                if unknown:  # the real provider refuses a session with an option it does not know
                    raise RuntimeError(f"[ONNXRuntimeError] unknown CUDA provider option(s): {unknown}")
                self.cuda_options = options
                providers, provider_options = [CPU], None
            super().__init__(path_or_bytes, sess_options, providers, provider_options, **kwargs)

        def get_providers(self) -> list[str]:
            real = list(super().get_providers())
            return [CUDA, *real] if self.standin_cuda else real

        def end_profiling(self) -> str:
            path = super().end_profiling()
            if self.standin_cuda and path:
                relabel_profile(Path(path))
            return path

    def available() -> list[str]:
        found = list(real_available())
        return found if CUDA in found else [CUDA, *found]

    _set(ort, "InferenceSession", StandinSession)
    _set(collection, "InferenceSession", StandinSession)
    _set(collection.OrtDevice, "make", staticmethod(make))
    _set(collection.OrtValue, "ortvalue_from_numpy", classmethod(from_numpy))
    _set(ort, "get_available_providers", available)
    # There are no CUDA libraries to preload: the stand-in has no device underneath.
    _set(ort, "preload_dlls", lambda *args, **kwargs: None)


def stays_on_cpu(event: dict[str, Any], forced: set[str]) -> bool:
    """Whether the CUDA provider would leave this profiled node on the CPU (see the module doc)."""
    args = event.get("args", {})
    op = args.get("op_name", "")
    if op in CPU_ONLY_OPS or op in forced:
        return True
    values = list(args.get("input_type_shape", [])) + list(args.get("output_type_shape", []))
    if not values:
        return False
    for value in values:
        for kind, shape in value.items():
            elements = 1
            for dim in shape:
                elements *= dim
            if not (kind.startswith(("int", "uint")) or kind == "bool") or elements > SHAPE_ELEMENTS:
                return False
    return True


def relabel_profile(path: Path) -> None:
    """Rewrite a CPU session's profile as the CUDA session it stands in for would have placed its nodes."""
    forced = {op.strip() for op in os.environ.get(CPU_OPS_ENV, "").split(",") if op.strip()}
    events = json.loads(path.read_text())
    for event in events:
        args = event.get("args", {})
        if event.get("cat") == "Node" and args.get("provider") == CPU and not stays_on_cpu(event, forced):
            args["provider"] = CUDA
    path.write_text(json.dumps(events))
