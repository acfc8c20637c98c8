"""Facts about the machine a figure was measured on: CPU, GPU and library versions.

Training, export and the bench all name their machine through these, so every report says it
the same way.
"""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from typing import Any

# onnxruntime ships as several distributions that install the same module.
ALIASES = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")}


@functools.cache
def cpu_info() -> dict[str, Any]:
    """py-cpuinfo's description of this CPU ({} where it cannot probe)."""
    try:
        import cpuinfo

        return cpuinfo.get_cpu_info() or {}
    except Exception:  # cpuinfo probes the CPU in ways some sandboxes forbid
        return {}


def cpu_name() -> str:
    return cpu_info().get("brand_raw") or platform.processor() or "unknown CPU"


def gpu_name() -> str:
    """The first CUDA device, or "none"."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    except Exception:  # a broken driver should not stop a CPU run
        pass
    return "none"


def isa_summary() -> str:
    """The vector ISA PyTorch dispatches to here, with the int8 / bf16 extensions that change speed.

    CPUs of one name differ (one session's machine had AVX-512 VNNI and BF16, the next AVX2 only),
    and int8 and bf16 gains hang on these flags, so every figure names them.
    """
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # an old torch without the probe
        capability = platform.machine()
    flags = {f.lower().replace("_", "") for f in cpu_info().get("flags", [])}
    extras = [name for flag, name in EXTENSIONS if flag in flags]
    return " + ".join([capability, *extras])


# cpuinfo flag (underscores dropped) -> the name a report gives it.
EXTENSIONS = (
    ("avx512vnni", "VNNI"),
    ("avxvnni", "AVX-VNNI"),
    ("avx512bf16", "AVX512-BF16"),
    ("amxbf16", "AMX-BF16"),
    ("amxint8", "AMX-INT8"),
)


def machine_summary() -> str:
    gpu = gpu_name()
    return f"{cpu_name()} ({os.cpu_count()} cores, {isa_summary()}), " + (
        "no GPU" if gpu == "none" else f"GPU {gpu}"
    )


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `names` (those present); an alias distribution is named beside its version."""
    out = {}
    for name in names:
        for dist in ALIASES.get(name, (name,)):
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
            out[name] = version if dist == name else f"{version} ({dist})"
            break
    return out


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch (or the only process): the one that writes."""
    return int(os.environ.get("RANK", "0")) == 0
