"""What a benchmark ran on: CPU, cores, instruction sets, GPU, threads and library versions."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

from distill import machine as distill_machine
from distill.machine import cpu_info, cpu_name, gpu_name

# The instruction sets that decide which kernels run (fp32 FMA, INT8 dot products, bf16/fp16).
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_int8",
    "neon",
    "asimddp",
    "sve",
)
# cpuinfo spells some flags two ways (avx512vnni / avx512_vnni): compare without underscores.
_NORMALISE = str.maketrans("", "", "_")

PACKAGES = (
    "torch",
    "transformers",
    "onnxruntime",
    "optimum",
    "optimum-onnx",
    "onnx",
    "openvino",
    "nncf",
    "pytest-benchmark",
)


@dataclass
class MachineInfo:
    cpu: str
    physical_cores: int
    logical_cores: int
    isa: list[str]
    gpu: str  # "none" where there is none
    threads: int
    os: str
    python: str
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def isa_flags(flags: list[str]) -> list[str]:
    """The ISA_FLAGS present in a cpuinfo flag list, in ISA_FLAGS order."""
    have = {f.lower().translate(_NORMALISE) for f in flags}
    return [f for f in ISA_FLAGS if f.translate(_NORMALISE) in have]


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the figures (those present)."""
    return distill_machine.package_versions(names)


def machine_info(threads: int) -> MachineInfo:
    import psutil

    info = cpu_info()
    cpu = cpu_name()
    if info.get("family") is not None:  # "AMD EPYC" alone does not say which generation
        cpu += f" (family {info.get('family')}, model {info.get('model')})"
    return MachineInfo(
        cpu=cpu,
        physical_cores=psutil.cpu_count(logical=False) or os.cpu_count() or 1,
        logical_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        isa=isa_flags(info.get("flags", [])),
        gpu=gpu_name(),
        threads=threads,
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        versions=package_versions(),
    )


def default_threads() -> int:
    """One thread per physical core: hyper-threads share the FMA units a GEMM saturates."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def quantization_target(isa: list[str], machine: str | None = None) -> str:
    """The optimum AutoQuantizationConfig constructor that fits this CPU."""
    machine = (machine or platform.machine()).lower()
    if machine in {"arm64", "aarch64"}:
        return "arm64"
    if "avx512_vnni" in isa:
        return "avx512_vnni"
    if "avx512f" in isa:
        return "avx512"
    return "avx2"
