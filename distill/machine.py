"""A one-line name for the machine a figure was measured on."""

from __future__ import annotations

import functools
import os
import platform


@functools.cache
def cpu_name() -> str:
    try:
        import cpuinfo

        return cpuinfo.get_cpu_info().get("brand_raw") or platform.processor() or "unknown CPU"
    except Exception:  # cpuinfo probes the CPU in ways some sandboxes forbid
        return platform.processor() or "unknown CPU"


def machine_summary() -> str:
    import torch

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu_name()} ({os.cpu_count()} cores){gpu}"
