"""The instruction set int8 kernels are chosen for: recorded by the export, checked by the bench.

The same int8 file runs different kernels on different CPUs: VNNI (AVX-512 VNNI, AVX-VNNI, AMX)
multiplies u8 x s8 in one instruction; plain AVX2 / AVX-512 uses VPMADDUBSW, whose 16-bit
intermediate sums can saturate (what 7-bit `reduce_range` weights avoid). A variant tuned and
timed on one class says little about another: on an AVX2-only CPU int8 MiniLM ran 1.28x its fp32,
on AVX-512 VNNI 2.6x.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

from distill.machine import cpu_info

NAMES = {
    "amx_int8": "AMX int8",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512": "AVX-512 (no VNNI)",
    "avx2": "AVX2 (no VNNI)",
    "arm64": "Arm64",
    "unknown": "unknown ISA",
}
VNNI_CLASSES = {"amx_int8", "avx512_vnni", "avx_vnni"}


def int8_isa(flags: Iterable[str], machine: str | None = None) -> str:
    """The int8 class of a CPU from its cpuinfo flags: amx_int8, avx512_vnni, avx_vnni, avx512, avx2, arm64."""
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine in {"arm64", "aarch64"}:
        return "arm64"
    have = {f.lower().replace("_", "") for f in flags}
    for name, flag in (
        ("amx_int8", "amxint8"),
        ("avx512_vnni", "avx512vnni"),
        ("avx_vnni", "avxvnni"),
        ("avx512", "avx512bw"),
        ("avx2", "avx2"),
    ):
        if flag in have:
            return name
    return "unknown"


def this_cpu() -> str:
    return int8_isa(cpu_info().get("flags", []))


def has_vnni(isa: str) -> bool:
    """u8 x s8 products without 16-bit saturation: reduce_range buys nothing here."""
    return isa in VNNI_CLASSES


def describe(isa: str) -> str:
    return NAMES.get(isa, isa)
