"""reports/benchmark.md: the machine, its limit, then one table per scenario and the F1-latency plot.

Input is the summary dict of bench/summary.py (JSON-able, so tests can hand-make one).
Derived figures, all from the p50 of each case:

    throughput   sequences / p50 (and forms / p50 end to end)
    speed-up     the teacher's PyTorch fp32 p50 in the same scenario / this p50
    rate         counted FLOPs (bench/flops.py) / p50
    % limit      the fastest the row's FLOPs could run on this machine / p50, where the fastest is
                 its int8 FLOPs at the int8 limit plus the rest at the fp32 limit (bench/limits.py:
                 best GEMM over several shapes, the models' own included, from the best round);
                 the limit mix column names the split. Above 100% means a model beat the probe:
                 the report says so rather than hide it.
    ΔF1          F1 - the teacher's PyTorch fp32 F1, in points
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.ocr_section import section as ocr_section
from bench.report_headline import headline
from bench.report_tables import BUSY_WARNING, derive, fmt, fmt_params, groups, scenario_table
from bench.runtimes import (
    BY_NAME,
    OV_REFERENCE,
    REFERENCE,
)
from distill import atomic
from distill.commands import portable_run, run_word
from distill.tables import per_type_table

MARKDOWN = "benchmark.md"
PLOT = "benchmark.png"
JSON = "benchmark.json"


# --- derived figures ------------------------------------------------------------------------


# --- formatting -----------------------------------------------------------------------------


# --- the document ---------------------------------------------------------------------------


def header_lines(summary: dict[str, Any]) -> list[str]:
    machine, run = summary["machine"], summary["run"]
    run_dir = run_word(run["path"])  # relative, or RUN: no writer's path
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
    lines = [f"# Benchmark: {run['name']}", ""]
    if run.get("timing_only"):
        lines += [
            f"> **{run['note']}**: models with random weights at their real sizes; only the speed figures mean anything.",
            "",
        ]
    lines += [
        f"- **Machine**: {machine['cpu']}, {machine['physical_cores']} physical cores ({machine['logical_cores']} logical); "
        f"ISA {' '.join(machine['isa']) or 'unknown'}; GPU: {machine['gpu']}; {machine['os']}",
        f"- **Threads**: {machine['threads']} (PyTorch intra-op, ONNX Runtime intra-op, OpenVINO INFERENCE_NUM_THREADS)",
        f"- **Versions**: Python {machine['python']}, {versions}",
        f"- **Written by**: `pytest bench --benchmark-only --run-dir {run_dir}` (after `python -m export.onnx` on that "
        f"run{'; RUN: the run directory below' if run_dir == 'RUN' else ''})",
        f"- **Run**: {portable_run(run['path'])}; data: {run['data']}"
        + (f", {_forms(run)}" if run.get("test_forms") else "")
        + f", windows of {run['max_length']} tokens (stride {run['stride']})",
    ]
    busy = (run.get("contention") or {}).get("other_processes_cores")
    if busy is not None:
        cores = machine["logical_cores"]
        warning = (
            " — **figures are slower and noisier than on an idle machine**"
            if busy > BUSY_WARNING * cores
            else ""
        )
        lines.append(
            f"- **Other processes** kept {busy:.1f} of the {cores} cores busy on average while the bench ran{warning}"
        )
    mismatch = summary.get("notes", {}).get("isa_mismatch")
    if mismatch:
        lines.append(f"- **Warning, int8 exported for another CPU**: {mismatch}.")
    limits = summary.get("limits", {})
    if limits:
        parts = []
        for precision, rate in limits.items():
            kernels = [k for k in summary.get("kernels", []) if k["precision"] == precision]
            unit = "GOP/s" if precision == "int8" else "GFLOP/s"
            detail = ""
            if kernels:
                best = max(kernels, key=lambda k: k["rate"])
                shape = "x".join(str(d) for d in best.get("shape", [])) or "?"
                detail = f" ({best['name']} at {shape}; best of {len(kernels)} probes)"
            parts.append(f"{precision} **{fmt(rate / 1e9)} {unit}**{detail}")
        lines.append(
            "- **Machine limit** (best round of the best GEMM probe in this session, several shapes, "
            "the models' own included): " + "; ".join(parts)
        )
    models = summary.get("models", {})
    if models:
        lines.append(
            "- **Models**: "
            + "; ".join(
                f"{n} ({m['shape']}, {fmt_params(m.get('params'))} params)" for n, m in models.items()
            )
        )
    return lines


def _forms(run: dict[str, Any]) -> str:
    total = run.get("test_split_forms")
    if total and total != run["test_forms"]:
        return f"end to end over the first {run['test_forms']} of {total} test forms"
    return f"{run['test_forms']} test forms"


def skipped_lines(skipped: list[dict[str, str]]) -> list[str]:
    by_reason: dict[tuple[str, str], list[str]] = {}
    for item in skipped:
        by_reason.setdefault((item["label"], item["reason"]), [])
        if item["model"] not in by_reason[(item["label"], item["reason"])]:
            by_reason[(item["label"], item["reason"])].append(item["model"])
    return [f"- {label} ({', '.join(models)}): {reason}" for (label, reason), models in by_reason.items()]


METHOD = """\
- Latency: synthetic full batches of the shape named (batch x text tokens; LayoutLMv3 adds its image
  patches), through the same `Backend` call as `predict_word_logits`. One untimed cold call, then a
  fixed number of warm-up calls whose fastest sizes the case, then rounds of one call each
  (`--benchmark-max-time` per case, at least `--benchmark-min-rounds`); p50/p95 over those rounds,
  whose count the `rounds` column gives. p95 is shown only with at least 20 rounds ("–" otherwise:
  with fewer it is the slowest call or two).
- End to end: `predict_word_logits` over the whole test split (tokenising, windows, image resize,
  padding, model, word merge), batches of 8 windows, windows of several forms batched by length;
  images decoded beforehand.
- FLOPs per sequence of L text tokens, T tokens through the encoder (L, plus image patches + 1 for
  LayoutLMv3), hidden d, feed-forward f, N layers, C labels: 2·T·N·(4d² + 2df) + 4·T²·d·N + 2·L·d·C
  (+ the patch embedding). % limit holds each row against the mix it runs: its int8 FLOPs (read from
  the ONNX graph or the OpenVINO IR: which weight GEMMs and attention products are integer kernels)
  at the int8 limit, the rest at the limit of the precision its float work runs in (fp32; bf16 for
  PyTorch autocast, and for OpenVINO where the CPU plugin's default is bf16); the limit mix column
  names the split.
- Peak memory: a fresh process per model and runtime, resident set after loading and running a batch of 8
  at the longest sequence, minus the same process's resident set before loading (the libraries).
- F1: entity F1 on the test split (points ×100); from metrics.json / the export manifest, else
  recomputed here through `predict_word_logits` + `score_word_logits`; CUDA rows show the F1 the
  bench's end-to-end pass measured on CUDA (or the export's, where it scored on CUDA), never a
  CPU-scored figure ("–" when no CUDA pass ran). ΔF1 is against the teacher in PyTorch fp32 (the
  run's stated F1 when that row did not run here); speed-up against the teacher in PyTorch fp32 on
  the same device (CPU rows against the CPU run, CUDA rows against PyTorch CUDA fp32).
- CUDA rows: the same fixed warm-up before timing; fp32 is IEEE fp32 throughout (no TF32 in
  PyTorch's matmuls and cuDNN, `use_tf32=0` for ONNX Runtime, none in the fp32 limit); ONNX Runtime
  through I/O binding with the inputs already on the device and the logits left there, PyTorch with
  device tensors, both synchronised before the clock stops; a CUDA row is refused, not timed, when
  one profiled call shows onnxruntime ran more than shape arithmetic on the CPU (over 5% of the
  node time, or any per-token tensor on or to the CPU); peak memory is the device memory the
  process took (its caching allocator's or arena's peak reservation), measured the same way for
  PyTorch and ONNX Runtime, with PyTorch's own peak allocation beside it ("alloc")."""


def settings_lines(found: list[dict[str, Any]]) -> list[str]:
    """What each end-to-end setting buys: interleaved medians, as multiples of the setting served."""
    lines: list[str] = []
    for item in found:
        label = BY_NAME[item["runtime"]].label if item["runtime"] in BY_NAME else item["runtime"]
        lines += [
            "",
            f"## What each end-to-end setting buys ({item['model']}, {label})",
            "",
            f"The test split ({item['forms']} forms) through `predict_word_logits`, every setting once per round "
            f"in a rotating order; a setting counts as slower only beyond the {item['margin']:.0%} noise margin "
            f"(the 10% tie, the worst interquartile spread, {item['other_processes_cores']:.2f} cores held by other "
            "processes).",
            "",
            "| setting | median s/pass | served is faster by | beyond the noise |",
            "|---|---:|---:|:---:|",
        ]
        for name, stats in item["settings"].items():
            ratio = stats["served_speedup"]
            served = name == item["served"]
            lines.append(
                f"| {name}{' (served)' if served else ''} | {fmt(stats['median_ms'] / 1000)} | "
                f"{'—' if served else f'{ratio:.2f}×'} | "
                f"{'—' if served else ('yes' if ratio > 1 / (1 - min(item['margin'], 0.99)) else 'no')} |"
            )
    return lines


def render(summary: dict[str, Any], plot_name: str | None = PLOT) -> str:
    rows = derive(summary)
    lines = header_lines(summary)
    top = headline(rows, summary.get("notes", {}))
    if top:
        lines += ["", "## Headline", ""] + [f"- {line}" for line in top]
    if plot_name:
        lines += ["", f"![F1 against latency: the efficiency frontier]({plot_name})"]
    for group in groups(rows):
        title = (
            "End to end: the test split through `predict_word_logits`"
            if group == "end-to-end"
            else group.capitalize()
        )
        lines += ["", f"## {title}", "", scenario_table(group, [r for r in rows if r["group"] == group])]
    lines += settings_lines(summary.get("e2e_settings") or [])
    lines += ocr_section(summary.get("ocr", []), rows)
    per_type = {f"{r['model']} / {r['runtime_label']}": r for r in rows if r.get("per_type")}
    if per_type:  # measured in the end-to-end pass, under the run's own labels
        lines += ["", "## Entity F1 per type (end to end)", ""]
        lines += per_type_table(per_type, summary["run"].get("labels"))
    errors = sorted(
        {f"{r['model']} / {r['runtime_label']}: {r['memory_error']}" for r in rows if r.get("memory_error")}
    )
    if errors:
        lines += ["", "Memory not measured for: " + "; ".join(errors)]
    if summary.get("skipped"):
        lines += ["", "## Not run on this machine", ""] + skipped_lines(summary["skipped"])
    notes = summary.get("notes", {})
    lines += ["", "## How the figures are made", "", METHOD]
    beaten = sorted(
        {f"{r['model']} / {r['runtime_label']} ({r['group']})" for r in rows if r.get("beats_limit")}
    )
    if beaten:
        lines.append(
            "- **The limit probe was beaten**: these rows ran faster than this machine's measured limit for "
            "their mix, so the limit is an underestimate here and their % limit is not a bound: "
            + "; ".join(beaten)
            + "."
        )
    forms = sorted({r["f1_forms"] for r in rows if r.get("f1") is not None and r.get("f1_forms")})
    if forms:
        lines.append(
            f"- The F1 column covers {' or '.join(map(str, forms))} test forms (the split's first N)."
        )
    if notes.get("f1_not_compared"):
        lines.append(f"- F1 not cross-checked: {notes['f1_not_compared']}.")
    if notes.get("f1_mismatch"):
        lines.append(
            f"- **F1 stated in the run's files differs from what the bench measured** (F1 column shows the stated): {notes['f1_mismatch']}."
        )
    if notes.get("reference"):
        same = (
            " It is the same model as the student's int8 variant (same operators, same weights)."
            if notes.get("reference_same_model")
            else ""
        )
        lines.append(f"- Reference row ({BY_NAME[REFERENCE].label}): {notes['reference']}.{same}")
    if notes.get("openvino_reference"):
        lines.append(f"- Reference row ({BY_NAME[OV_REFERENCE].label}): {notes['openvino_reference']}.")
    if notes.get("recommended_cpu"):
        listed = ", ".join(f"{m} `{v}`" for m, v in notes["recommended_cpu"].items() if v)
        lines.append(
            f"- Recommended CPU variants (the export's measured choice, onnx/manifest.json): {listed}; the headline "
            "holds the student's to the targets."
        )
    if summary["run"].get("timing_only"):
        lines.append(f"- This run is **{summary['run']['note']}**.")
    return "\n".join(lines) + "\n"


def write_report(
    report_dir: Path, summary: dict[str, Any], benchmark_json: dict[str, Any] | None = None
) -> Path:
    """benchmark.md, benchmark.png and benchmark.json in `report_dir`, each written atomically."""
    from bench.plot import frontier_png

    report_dir = Path(report_dir)
    png = frontier_png(derive(summary), timing_only=bool(summary["run"].get("timing_only")))
    if png is not None:
        atomic.write_bytes(report_dir / PLOT, png)
    payload = dict(benchmark_json or {})
    payload["docdistill"] = summary
    atomic.write_text(report_dir / JSON, json.dumps(payload, indent=2, default=str) + "\n")
    return atomic.write_text(report_dir / MARKDOWN, render(summary, PLOT if png is not None else None))
