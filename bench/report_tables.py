"""The benchmark report's cells and tables: number formats, the rows derived from the summary, one table a scenario."""

from __future__ import annotations

from typing import Any

from bench.runtimes import (
    BASELINE_RUNTIME,
    BY_NAME,
    GPU_BASELINE_RUNTIME,
    RUNTIMES,
)
from bench.timing import P95_MIN_ROUNDS

COMPARE_RUNTIMES = ("ov-int8", "ort-int8", "ov", "ort-fp32-optimized", "ort-fp32", BASELINE_RUNTIME)


BUSY_WARNING = 0.1  # share of the cores other processes may take before the header warns


MODEL_ORDER = ("teacher", "student", "student-baseline")


RUNTIME_ORDER = {r.name: i for i, r in enumerate(RUNTIMES)}


def _model_rank(name: str) -> tuple[int, str]:
    return (MODEL_ORDER.index(name), "") if name in MODEL_ORDER else (len(MODEL_ORDER), name)


def _row_order(row: dict[str, Any]) -> tuple[Any, ...]:
    return (_model_rank(row["model"]), RUNTIME_ORDER.get(row["runtime"], 99))


def teacher_f1(rows: list[dict[str, Any]]) -> float | None:
    for row in rows:
        if row["model"] == "teacher" and row["runtime"] == BASELINE_RUNTIME and row.get("f1") is not None:
            return float(row["f1"])
    return None


def runtime_device(name: str) -> str:
    runtime = BY_NAME.get(name)
    return runtime.device if runtime else "cpu"


def limit_mix(row: dict[str, Any], limits: dict[str, float]) -> tuple[float | None, str]:
    """(seconds the row's FLOPs take at this machine's limits, the mix named) for one row.

    CPU rows: int8 FLOPs at the int8 limit + the rest at the limit of the precision the row's float
    work runs in (fp32, or bf16 for PyTorch autocast and OpenVINO where the CPU has it): a share of
    100% is then a true bound. CUDA rows: all FLOPs at their precision's limit.
    """
    flops = row.get("flops")
    precision = row.get("limit_precision", "fp32")
    if not flops:
        return None, "–"
    if precision.startswith("cuda"):
        limit = limits.get(precision)
        return (flops / limit if limit else None), precision
    floating = row.get("float_precision") or ("bf16" if precision == "bf16" else "fp32")
    # Rows from before the graph was read carry no split: an int8 row was then counted all int8.
    int8 = row.get("flops_int8", flops if precision == "int8" else 0)
    rest = flops - int8
    if (int8 and not limits.get("int8")) or (rest and not limits.get(floating)):
        return None, "–"
    seconds = (int8 / limits["int8"] if int8 else 0.0) + (rest / limits[floating] if rest else 0.0)
    if not int8:
        return seconds, floating
    if not rest:
        return seconds, "int8"
    return seconds, f"int8 {int8 / flops:.0%} + {floating} {rest / flops:.0%}"


def derive(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's rows with throughput, speed-up, rate, share of the limit and ΔF1 added."""
    rows = [dict(r) for r in summary["rows"]]
    # Speed-ups stay on one device: CPU rows against the teacher in PyTorch fp32 on the CPU, CUDA
    # rows against the teacher in PyTorch fp32 on the GPU.
    base = {
        (r["group"], runtime_device(r["runtime"])): r["p50_s"]
        for r in rows
        if r["model"] == "teacher" and r["runtime"] in (BASELINE_RUNTIME, GPU_BASELINE_RUNTIME)
    }
    reference_f1 = teacher_f1(rows)
    if reference_f1 is None:  # the teacher's CPU row did not run here: the run's files state its F1
        reference_f1 = summary.get("reference_f1")
    limits = summary.get("limits", {})
    for row in rows:
        p50 = row["p50_s"]
        row["seq_per_s"] = row.get("sequences", 0) / p50 if p50 else None
        row["forms_per_s"] = row["forms"] / p50 if p50 and row.get("forms") else None
        key = (row["group"], runtime_device(row["runtime"]))
        row["speedup"] = base[key] / p50 if p50 and key in base else None
        row["rate"] = row["flops"] / p50 if p50 and row.get("flops") else None
        bound_s, row["limit_mix"] = limit_mix(row, limits)
        row["share"] = bound_s / p50 if bound_s and p50 else None
        row["beats_limit"] = row["share"] is not None and row["share"] > 1.0
        f1 = row.get("f1")
        row["delta_f1"] = (f1 - reference_f1) * 100 if f1 is not None and reference_f1 is not None else None
    return sorted(rows, key=_row_order)


def groups(rows: list[dict[str, Any]]) -> list[str]:
    """end-to-end first (the user's view), then latency scenarios by batch and sequence length."""

    def key(group: str) -> tuple[int, int, int]:
        if group == "end-to-end":
            return (0, 0, 0)
        parts = group.split()  # "latency batch B seq S"
        return (1, int(parts[2]), int(parts[4]))

    return sorted({r["group"] for r in rows}, key=key)


def fmt(value: float | None, digits: int = 3) -> str:
    """`digits` significant digits, no scientific notation for the ranges a report shows."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) < 1:
        return f"{value:.{digits}g}"
    decimals = max(0, digits - len(str(int(abs(value)))))
    return f"{value:,.{decimals}f}"


def fmt_ms(seconds: float | None) -> str:
    return fmt(seconds * 1000 if seconds is not None else None)


def fmt_mb(size: float | None) -> str:
    return fmt(size / 1e6 if size is not None else None)


def fmt_params(params: int | None) -> str:
    if params is None:
        return "–"
    return f"{params / 1e6:.1f}M" if params >= 1e5 else f"{params / 1e3:.0f}k"


def p95(row: dict[str, Any]) -> float | None:
    """The row's p95, only where enough rounds make it one (else the slowest call or two)."""
    rounds = row.get("rounds")
    return row.get("p95_s") if isinstance(rounds, int) and rounds >= P95_MIN_ROUNDS else None


def fmt_share(share: float | None) -> str:
    if share is None:
        return "–"
    return f"{share * 100:.0f}%" + (" (probe beaten)" if share > 1.0 else "")


def fmt_delta(points: float | None) -> str:
    return f"{points:+.1f}" if points is not None else "–"


def fmt_f1(f1: float | None) -> str:
    return f"{f1 * 100:.1f}" if f1 is not None else "–"


def table(header: list[str], body: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _common(row: dict[str, Any]) -> list[str]:
    """speed-up, rate, share, F1, ΔF1, memory, size, params: the columns every scenario shows."""
    memory = fmt(row.get("memory_mib"), 3) if row.get("memory_mib") is not None else "–"
    if row.get("torch_allocated_mib") is not None:  # CUDA PyTorch rows: the allocator's own peak too
        memory += f" ({fmt(row['torch_allocated_mib'], 3)} alloc)"
    return [
        f"{row['speedup']:.1f}×" if row.get("speedup") else "–",
        fmt(row["rate"] / 1e9 if row.get("rate") else None),
        fmt_share(row.get("share")),
        row.get("limit_mix", "–"),
        fmt_f1(row.get("f1")),
        fmt_delta(row.get("delta_f1")),
        memory,
        fmt_mb(row.get("size_bytes")),
        fmt_params(row.get("params")),
    ]


COMMON_HEADER = [
    "speed-up",
    "G(FL)OP/s",
    "% limit",
    "limit mix",
    "F1",
    "ΔF1",
    "peak MiB",
    "size MB",
    "params",
]


def scenario_table(group: str, rows: list[dict[str, Any]]) -> str:
    body = []
    if group == "end-to-end":
        header = [
            "model",
            "runtime",
            "forms/s",
            "seq/s",
            "p50 s/pass",
            "p95 s/pass",
            "rounds",
        ] + COMMON_HEADER
        for r in rows:
            body.append(
                [
                    r["model"],
                    r["runtime_label"],
                    fmt(r.get("forms_per_s")),
                    fmt(r.get("seq_per_s")),
                    fmt(r["p50_s"]),
                    fmt(p95(r)),
                    str(r.get("rounds", "–")),
                ]
                + _common(r)
            )
    else:
        header = ["model", "runtime", "p50 ms", "p95 ms", "rounds", "seq/s"] + COMMON_HEADER
        for r in rows:
            label = r["runtime_label"]
            if r.get("seq_requested") and r.get("seq") != r.get("seq_requested"):
                label += f" (seq capped at {r['seq']})"
            body.append(
                [
                    r["model"],
                    label,
                    fmt_ms(r["p50_s"]),
                    fmt_ms(p95(r)),
                    str(r.get("rounds", "–")),
                    fmt(r.get("seq_per_s")),
                ]
                + _common(r)
            )
    return table(header, body)


def _find(rows: list[dict[str, Any]], group: str, model: str, runtime: str) -> dict[str, Any] | None:
    for row in rows:
        if row["group"] == group and row["model"] == model and row["runtime"] == runtime:
            return row
    return None
