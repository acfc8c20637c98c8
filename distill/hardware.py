"""What this machine and a model can do: the CPU's native precisions, a model's position limit.

Shared by training's preflight, the export and the bench (each refuses or skips what cannot run).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

# The tiny preset's models have 512 usable positions each (tiny_teacher: 514 rows minus
# RoBERTa's offset of 2; tiny_student: 512); tests/test_preflight.py holds the two to this.
TINY_POSITIONS = 512


# Model types that number positions from padding_idx + 1 (RoBERTa's scheme): the first
# pad_token_id + 1 rows of their position table never hold a token.
PADDING_OFFSET_TYPES = frozenset(
    {
        "roberta",
        "roberta-prelayernorm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "data2vec-text",
        "longformer",
        "layoutlmv3",
        "mpnet",
        "ibert",
        "lilt",
        "markuplm",
        "xmod",
    }
)


# x86 flags (as /proc/cpuinfo names them) of native bfloat16 arithmetic, and the ARM one.
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


ARM_BF16_FLAG = "bf16"


def position_limit(model_config: object) -> int | None:
    """Sub-tokens one window may hold for a model of this config (None: no absolute positions)."""
    rows = getattr(model_config, "max_position_embeddings", None)
    if rows is None or getattr(model_config, "position_biased_input", True) is False:
        return None  # e.g. DeBERTa-v2/v3: relative positions only
    if getattr(model_config, "model_type", "") in PADDING_OFFSET_TYPES:
        pad = getattr(model_config, "pad_token_id", None)
        rows -= (1 if pad is None else pad) + 1
    return int(rows)


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo text (x86 `flags`, ARM `Features`); empty if unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    if not flags:  # not Linux: py-cpuinfo knows macOS and Windows
        from distill.machine import cpu_info

        flags.update(cpu_info().get("flags", []))
    return frozenset(flags)


def cpu_features() -> tuple[str, frozenset[str]]:
    """(PyTorch's CPU capability, the CPU's flags): what bf16_refusal decides on."""
    return torch.backends.cpu.get_cpu_capability(), cpu_flags()


def bf16_refusal(capability: str, flags: Iterable[str]) -> str | None:
    """Why bf16 training would be emulated (slow) on this CPU, or None where it is native.

    x86 needs an AVX-512 BF16 or AMX BF16 flag, and PyTorch's kernels running at AVX-512 (a
    capability forced lower, e.g. ATEN_CPU_CAPABILITY=avx2, leaves those instructions unused).
    ARM needs the bf16 feature.
    """
    flags = set(flags)
    if ARM_BF16_FLAG in flags:
        return None
    native = [f for f in X86_BF16_FLAGS if f in flags]
    if native and capability.upper().startswith("AVX512"):
        return None
    if native:
        return (
            f"this CPU has {'/'.join(native)} but PyTorch's CPU kernels run at {capability}, "
            "so bfloat16 would be emulated"
        )
    return (
        f"this CPU has no native bfloat16 (no {' or '.join(X86_BF16_FLAGS)} flag; PyTorch CPU "
        f"capability {capability}): bf16 would be emulated, many times slower than fp32"
    )


ISA_LEVELS = ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")  # best first


def isa_name(flags: Iterable[str] | None = None) -> str:
    """The CPU's highest vector ISA of ISA_LEVELS (else its machine name): what OpenVINO's and ONNX
    Runtime's kernels, and so an exported model's outputs, depend on."""
    import platform

    found = set(cpu_flags() if flags is None else flags)
    return next((level for level in ISA_LEVELS if level in found), platform.machine() or "unknown")
