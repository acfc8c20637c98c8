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


def machine_summary() -> str:
    gpu = gpu_name()
    return f"{cpu_name()} ({os.cpu_count()} cores), " + ("no GPU" if gpu == "none" else f"GPU {gpu}")


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
