"""Every finished case's figures, joined with what the run's files say: the data the report is drawn from.

A plain JSON-able dict, so the report writer can be tested on small hand-made inputs and the
same figures travel inside benchmark.json beside the pytest-benchmark statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.catalog import TIMING_ONLY_NOTE, manifest_variant, onnx_size
from bench.context import Bench
from bench.limits import best_rates
from bench.runtimes import BASELINE_RUNTIME, BY_NAME, OV_REFERENCE, REFERENCE, Runtime
from bench.timing import P95_MIN_ROUNDS
from distill.data.run_data import describe_run_data
from export.isa import describe as describe_isa
from export.isa import this_cpu

# The bench re-scores every variant it runs end to end; a stated F1 further off than this means the
# run's files no longer describe its models (retrained, data changed): the report says so.
F1_TOLERANCE = 0.005


def timing_stats(data: list[float]) -> dict[str, float]:
    """p50 / p95 / mean / best of a case's round times (seconds); p95 is None under P95_MIN_ROUNDS rounds."""
    values = np.asarray(data, dtype=np.float64)
    return {
        "p50_s": float(np.percentile(values, 50)),
        # With fewer rounds the 95th percentile is the slowest call or two: a maximum, not a p95.
        "p95_s": float(np.percentile(values, 95)) if values.size >= P95_MIN_ROUNDS else None,
        "mean_s": float(values.mean()),
        "min_s": float(values.min()),
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


def limit_probes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The machine-limit probes among the case rows, each at its fastest round's rate.

    A limit is the best this machine does: other processes only ever add time, so the fastest
    round, not the median, is the probe's rate.
    """
    return [
        {
            "name": r["kernel"],
            "precision": r["precision"],
            "rate": r["flops"] / r["min_s"],
            "best_s": r["min_s"],
            "p50_s": r["p50_s"],
            "shape": r["shape"],
        }
        for r in rows
        if r.get("kind") == "limit"
    ]


def summarise(bench: Bench, metadatas: list[Any]) -> dict[str, Any]:
    rows = case_rows(metadatas)
    catalog = bench.catalog
    kernels = limit_probes(rows)
    limits = best_rates([(k["precision"], k["rate"]) for k in kernels])
    # Per model and runtime: F1 (the run's files first, else measured here), memory, size, params.
    measured_f1 = {(r["model"], r["runtime"]): r["f1_measured"] for r in rows if r.get("kind") == "e2e"}
    pairs = sorted({(r["model"], r["runtime"]) for r in rows if r.get("kind") in ("latency", "e2e")})
    memory = bench.peak_memory(pairs)
    e2e_ran = any(r.get("kind") == "e2e" for r in rows)
    measured_forms = len(bench.test_forms) if e2e_ran else None
    split_forms = bench.test_split_size or None
    model_rows = []
    for row in rows:
        if row.get("kind") not in ("latency", "e2e"):
            continue
        runtime = BY_NAME[row["runtime"]]
        key = (row["model"], row["runtime"])
        known = catalog.known_f1(row["model"], runtime)
        if runtime.is_cuda and not stated_on_cuda(catalog.manifest, row["model"], runtime):
            known = None  # the run's files scored it on the CPU: only the bench's CUDA pass speaks for CUDA
        f1, source = (
            (known, "run files") if known is not None else (measured_f1.get(key), "measured by the bench")
        )
        size = catalog.size_bytes(row["model"], runtime)
        if runtime.name in (REFERENCE, OV_REFERENCE) and size is None:
            try:
                size = onnx_size(bench.onnx_path(row["model"], runtime))
            except Exception:  # the reference was never built: no size to show
                size = None
        mem = memory.get(key, {})
        # Which forms each F1 covers: the export's scored forms (the whole split unless it was cut).
        stated_forms = catalog.f1_forms(row["model"], runtime) or split_forms
        model_rows.append(
            {
                **row,
                "runtime_label": runtime.label,
                "limit_precision": runtime.limit,
                "f1": f1,
                "f1_source": source if f1 is not None else None,
                "f1_measured": measured_f1.get(key),
                "f1_forms": stated_forms if source == "run files" else measured_forms,
                "f1_measured_forms": measured_forms if key in measured_f1 else None,
                "size_bytes": size,
                "params": catalog.params(row["model"]),
                "memory_mib": mem.get("peak_mib"),
                "memory_error": mem.get("error"),
                "torch_allocated_mib": mem.get("torch_allocated_mib"),
            }
        )
    config = catalog.config
    notes = dict(bench.notes)
    mismatched = f1_mismatches(model_rows)
    if mismatched:
        notes["f1_mismatch"] = "; ".join(mismatched)
    not_compared = sorted(
        {
            f"{r['model']} / {r['runtime_label']}"
            for r in model_rows
            if _stated_and_measured(r) and not _same_forms(r)
        }
    )
    if not_compared:
        notes["f1_not_compared"] = (
            f"the run's files score {_forms_text(model_rows, 'f1_forms', split_forms)}, the bench's end-to-end pass "
            f"the first {measured_forms} of {split_forms} test forms (--e2e-forms): different forms, so their F1 "
            f"are not compared ({len(not_compared)} rows)"
        )
    warnings = isa_warnings(
        {m: catalog.int8_isa(m) for m in {r["model"] for r in model_rows if r["runtime"] == "ort-int8"}},
        this_cpu(),
    )
    if warnings:
        notes["isa_mismatch"] = "; ".join(warnings)
    # The variants the export recommends: the headline holds the student's to the targets.
    models = catalog.manifest.get("models", {})
    notes["recommended_cpu"] = {name: entry.get("recommended_cpu") for name, entry in models.items()}
    if any(r["runtime"] == REFERENCE for r in model_rows):
        same = bench.reference_is_ours("student")
        if same is not None:
            notes["reference_same_model"] = same
            notes["int8_method"] = (
                catalog.manifest.get("models", {})
                .get("student", {})
                .get("variants", {})
                .get("int8", {})
                .get("method")
            )
    settings = [
        {
            k: r[k]
            for k in ("model", "runtime", "served", "forms", "margin", "other_processes_cores", "settings")
        }
        for r in rows
        if r.get("kind") == "e2e-settings"
    ]
    return {
        "e2e_settings": settings,
        "run": {
            "path": str(catalog.run),
            "name": catalog.run.name,
            "data": describe_run_data(config),
            "max_length": config.max_length,
            "stride": config.stride,
            "labels": list(bench.labels.types) if hasattr(bench, "labels") else None,
            "test_forms": measured_forms,
            "test_split_forms": split_forms,
            "timing_only": catalog.timing_only,
            "contention": bench.contention,
            "note": TIMING_ONLY_NOTE if catalog.timing_only else "",
        },
        "machine": bench.machine.as_dict(),
        "limits": limits,
        "kernels": kernels,
        # ΔF1's reference even when the teacher's CPU row did not run (a `-k cuda` selection)
        "reference_f1": catalog.known_f1("teacher", BY_NAME[BASELINE_RUNTIME])
        if "teacher" in catalog.models
        else None,
        "models": {
            name: {
                "model_type": e.model_type,
                "params": catalog.params(name),
                "shape": describe_config(e.config),
            }
            for name, e in catalog.models.items()
        },
        "rows": model_rows,
        "ocr": [r for r in rows if r.get("kind") == "ocr-e2e"],  # bench/ocr_section.py renders them
        "skipped": bench.skipped,
        "notes": notes,
    }


def stated_on_cuda(manifest: dict[str, Any], model: str, runtime: Runtime) -> bool:
    """Whether the run's files scored this CUDA row's model on CUDA (the export records where: scored_on).

    PyTorch's F1 in metrics.json and the manifest is a CPU figure, and so is an ONNX variant's
    exported where no CUDA provider loaded; fp16 and TF32-free fp32 on a GPU can score otherwise.
    """
    if runtime.engine != "onnxruntime":
        return False
    return manifest_variant(manifest, model, runtime.variant or "").get("scored_on") == "CUDA"


def isa_warnings(exported_for: dict[str, str | None], here: str) -> list[str]:
    """One line per int8 variant that was quantised (and its rung chosen) on another instruction set."""
    return [
        f"{model}'s int8 was exported for {describe_isa(isa)}, this machine is {describe_isa(here)}: its rung was "
        "chosen and timed on the other CPU class; re-export here (`python -m export.onnx`) for figures that fit"
        for model, isa in sorted(exported_for.items())
        if isa and isa != here
    ]


def _stated_and_measured(row: dict[str, Any]) -> bool:
    return row["f1_source"] == "run files" and row["f1_measured"] is not None


def _same_forms(row: dict[str, Any]) -> bool:
    """Stated and measured F1 cover the same forms (both are the split's first N: equal N, same forms)."""
    return row.get("f1_forms") is not None and row.get("f1_forms") == row.get("f1_measured_forms")


def f1_mismatches(model_rows: list[dict[str, Any]]) -> list[str]:
    """Rows whose stated F1 differs from the bench's own measure over the *same* forms."""
    return sorted(
        {
            f"{r['model']} / {r['runtime_label']}: stated {r['f1'] * 100:.1f}, measured {r['f1_measured'] * 100:.1f} "
            f"(both over {r['f1_forms']} test forms)"
            for r in model_rows
            if _stated_and_measured(r) and _same_forms(r) and abs(r["f1"] - r["f1_measured"]) > F1_TOLERANCE
        }
    )


def _forms_text(rows: list[dict[str, Any]], key: str, split: int | None) -> str:
    counts = sorted({r[key] for r in rows if r.get(key)})
    if not counts:
        return "an unknown number of forms"
    text = " or ".join(str(c) for c in counts)
    return f"{text} test forms" + (f" (of {split})" if split and counts != [split] else "")


def describe_config(config: Any) -> str:
    """hidden x layers (x image patches) in a few characters, for the report's model list."""
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", "?")
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", "?")
    text = f"{config.model_type}, hidden {hidden}, {layers} layers"
    if getattr(config, "visual_embed", False) and config.model_type == "layoutlmv3":
        text += f", image {config.input_size}px / {config.patch_size}px patches"
    return text
