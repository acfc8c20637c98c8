"""Every finished case's figures, joined with what the run's files say: the data the report is drawn from.

A plain JSON-able dict, so the report writer can be tested on small hand-made inputs and the
same figures travel inside benchmark.json beside the pytest-benchmark statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.catalog import TIMING_ONLY_NOTE
from bench.context import Bench
from bench.limits import best_rates
from bench.runtimes import BY_NAME, REFERENCE
from distill.run_dir import describe_run_data

# The bench re-scores every variant it runs end to end; a stated F1 further off than this means the
# run's files no longer describe its models (retrained, data changed): the report says so.
F1_TOLERANCE = 0.005


def timing_stats(data: list[float]) -> dict[str, float]:
    """p50 / p95 / mean of a case's round times (seconds)."""
    values = np.asarray(data, dtype=np.float64)
    return {
        "p50_s": float(np.percentile(values, 50)),
        "p95_s": float(np.percentile(values, 95)),
        "mean_s": float(values.mean()),
        "rounds": int(values.size),
    }


def case_rows(metadatas: list[Any]) -> list[dict[str, Any]]:
    """One dict per finished case: its extra_info and its timing statistics."""
    rows = []
    for meta in metadatas:
        if not meta or not meta.stats.data:  # --benchmark-disable leaves no statistics
            continue
        rows.append(
            {"group": meta.group, "name": meta.name, **meta.extra_info, **timing_stats(meta.stats.data)}
        )
    return rows


def summarise(bench: Bench, metadatas: list[Any]) -> dict[str, Any]:
    rows = case_rows(metadatas)
    catalog = bench.catalog
    kernels = [
        {
            "name": r["kernel"],
            "precision": r["precision"],
            "rate": r["flops"] / r["p50_s"],
            "p50_s": r["p50_s"],
            "shape": r["shape"],
        }
        for r in rows
        if r.get("kind") == "limit"
    ]
    limits = best_rates([(k["precision"], k["rate"]) for k in kernels])
    # Per model and runtime: F1 (the run's files first, else measured here), memory, size, params.
    measured_f1 = {(r["model"], r["runtime"]): r["f1_measured"] for r in rows if r.get("kind") == "e2e"}
    pairs = sorted({(r["model"], r["runtime"]) for r in rows if r.get("kind") in ("latency", "e2e")})
    memory = bench.peak_memory(pairs)
    model_rows = []
    for row in rows:
        if row.get("kind") not in ("latency", "e2e"):
            continue
        runtime = BY_NAME[row["runtime"]]
        key = (row["model"], row["runtime"])
        known = catalog.known_f1(row["model"], runtime)
        f1, source = (
            (known, "run files") if known is not None else (measured_f1.get(key), "measured by the bench")
        )
        size = catalog.size_bytes(row["model"], runtime)
        if runtime.name == REFERENCE and size is None:
            try:
                size = bench.reference_path(row["model"]).stat().st_size
            except Exception:  # the reference was never built: no size to show
                size = None
        mem = memory.get(key, {})
        model_rows.append(
            {
                **row,
                "runtime_label": runtime.label,
                "limit_precision": runtime.limit,
                "f1": f1,
                "f1_source": source if f1 is not None else None,
                "f1_measured": measured_f1.get(key),
                "size_bytes": size,
                "params": catalog.params(row["model"]),
                "memory_mib": mem.get("peak_mib"),
                "memory_error": mem.get("error"),
            }
        )
    config = catalog.config
    notes = dict(bench.notes)
    mismatched = sorted(
        {
            f"{r['model']} / {r['runtime_label']}: stated {r['f1'] * 100:.1f}, measured {r['f1_measured'] * 100:.1f}"
            for r in model_rows
            if r["f1_source"] == "run files"
            and r["f1_measured"] is not None
            and abs(r["f1"] - r["f1_measured"]) > F1_TOLERANCE
        }
    )
    if mismatched:
        notes["f1_mismatch"] = "; ".join(mismatched)
    return {
        "run": {
            "path": str(catalog.run),
            "name": catalog.run.name,
            "data": describe_run_data(config),
            "max_length": config.max_length,
            "stride": config.stride,
            "labels": list(bench.labels.types) if hasattr(bench, "labels") else None,
            "test_forms": len(bench.test_forms) if any(r.get("kind") == "e2e" for r in rows) else None,
            "test_split_forms": bench.test_split_size or None,
            "timing_only": catalog.timing_only,
            "contention": bench.contention,
            "note": TIMING_ONLY_NOTE if catalog.timing_only else "",
        },
        "machine": bench.machine.as_dict(),
        "limits": limits,
        "kernels": kernels,
        "models": {
            name: {
                "model_type": e.model_type,
                "params": catalog.params(name),
                "shape": describe_config(e.config),
            }
            for name, e in catalog.models.items()
        },
        "rows": model_rows,
        "skipped": bench.skipped,
        "notes": notes,
    }


def describe_config(config: Any) -> str:
    """hidden x layers (x image patches) in a few characters, for the report's model list."""
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", "?")
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", "?")
    text = f"{config.model_type}, hidden {hidden}, {layers} layers"
    if getattr(config, "visual_embed", False) and config.model_type == "layoutlmv3":
        text += f", image {config.input_size}px / {config.patch_size}px patches"
    return text
