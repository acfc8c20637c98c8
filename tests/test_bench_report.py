"""The benchmark report writer on a small hand-made summary (bench/report.py, bench/plot.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.plot import frontier
from bench.report import JSON, MARKDOWN, PLOT, render, write_report
from bench.report_tables import derive, fmt

GFLOP = 1e9


def row(
    model: str, runtime: str, label: str, p50: float, group: str = "latency batch 1 seq 512", **extra: Any
) -> dict[str, Any]:
    base = {
        "group": group,
        "kind": "e2e" if group == "end-to-end" else "latency",
        "model": model,
        "runtime": runtime,
        "runtime_label": label,
        "batch": 1,
        "seq": 512,
        "seq_requested": 512,
        "p50_s": p50,
        "p95_s": p50 * 1.5,
        "rounds": 5,
        "flops": 10 * GFLOP,
        "sequences": 1,
        "limit_precision": "int8" if "int8" in runtime else "fp32",
        "f1": 0.8,
        "f1_source": "run files",
        "f1_measured": 0.8,
        "size_bytes": 2_000_000,
        "params": 66_000_000,
        "memory_mib": 300.0,
        "memory_error": None,
    }
    return {**base, **extra}


def summary(timing_only: bool = False) -> dict[str, Any]:
    return {
        "run": {
            "path": "/runs/x",
            "name": "x",
            "data": "synthetic",
            "max_length": 512,
            "stride": 128,
            "test_forms": 10,
            "timing_only": timing_only,
            "note": "timing only, F1 not meaningful" if timing_only else "",
            "contention": {"other_processes_cores": 1.5},
        },
        "machine": {
            "cpu": "Test CPU",
            "physical_cores": 2,
            "logical_cores": 4,
            "isa": ["avx2", "avx512_vnni"],
            "gpu": "none",
            "threads": 2,
            "os": "Linux",
            "python": "3.11",
            "versions": {"torch": "2.0", "onnxruntime": "1.0"},
        },
        "limits": {"fp32": 100 * GFLOP, "int8": 400 * GFLOP},
        "kernels": [
            {"name": "torch matmul fp32", "precision": "fp32", "rate": 100 * GFLOP},
            {"name": "onnxruntime MatMulInteger u8s8", "precision": "int8", "rate": 400 * GFLOP},
        ],
        "models": {"teacher": {"shape": "layoutlmv3, hidden 768, 12 layers", "params": 125_000_000}},
        "rows": [
            row("teacher", "torch-fp32", "PyTorch fp32", 1.0, f1=0.9, flops=50 * GFLOP),
            row("student", "ort-int8", "ORT int8", 0.05, f1=0.85),
            row("student", "optimum-int8", "ORT int8, optimum defaults", 0.1, f1=0.84),
            row("student", "torch-fp32", "PyTorch fp32", 0.2, f1=0.85),
            row("student-layout", "torch-fp32", "PyTorch fp32", 0.21, f1=0.88),
            row(
                "teacher",
                "torch-fp32",
                "PyTorch fp32",
                20.0,
                group="end-to-end",
                forms=10,
                sequences=12,
                f1=0.9,
            ),
            row("student", "ort-int8", "ORT int8", 1.0, group="end-to-end", forms=10, sequences=12, f1=0.85),
            row(
                "student",
                "ort-fp32",
                "ORT fp32",
                1.5,
                group="latency batch 8 seq 128",
                seq=128,
                seq_requested=128,
                f1=None,
            ),
        ],
        "skipped": [
            {"model": "teacher", "label": "PyTorch CUDA fp16", "case": "a", "reason": "no CUDA device"},
            {"model": "student", "label": "PyTorch CUDA fp16", "case": "b", "reason": "no CUDA device"},
        ],
        "notes": {"reference": "optimum ORTQuantizer, AutoQuantizationConfig.avx512_vnni(is_static=False)"},
    }


def test_derived_figures() -> None:
    rows = {(r["group"], r["model"], r["runtime"]): r for r in derive(summary())}
    teacher = rows[("latency batch 1 seq 512", "teacher", "torch-fp32")]
    student = rows[("latency batch 1 seq 512", "student", "ort-int8")]
    assert teacher["speedup"] == 1.0 and abs(student["speedup"] - 20.0) < 1e-9
    assert abs(student["rate"] - 200 * GFLOP) < 1 and abs(student["share"] - 0.5) < 1e-9  # of the int8 limit
    assert abs(teacher["share"] - 0.5) < 1e-9  # 50 GFLOP in 1 s of a 100 GFLOP/s fp32 limit
    assert abs(student["delta_f1"] - (-5.0)) < 1e-9  # points against the teacher in PyTorch fp32
    e2e = rows[("end-to-end", "student", "ort-int8")]
    assert e2e["forms_per_s"] == 10.0 and e2e["seq_per_s"] == 12.0
    assert rows[("latency batch 8 seq 128", "student", "ort-fp32")]["speedup"] is None  # no teacher row there


def test_markdown_has_header_headline_tables_and_skips() -> None:
    text = render(summary())
    assert text.startswith("# Benchmark: x")
    for needle in (
        "Test CPU",
        "avx512_vnni",
        "GPU: none",
        "torch 2.0",
        "onnxruntime 1.0",
        "**100 GFLOP/s**",
        "**400 GOP/s**",
    ):
        assert needle in text, needle
    assert "**20.0×** the forms per second" in text  # 1 form/s against 0.05
    assert "**50%** of this machine's limit for the mix it runs (int8;" in text
    assert "batch 1 seq 512 **2.00×**; faster at the only shape both ran" in text  # ours 50 ms, optimum's 100
    assert (
        "student-layout (PyTorch fp32, batch 1, seq 512): 210 ms, +5% against the text student's 200 ms"
        in text
    )
    assert (
        "## End to end" in text
        and "## Latency batch 1 seq 512" in text
        and "## Latency batch 8 seq 128" in text
    )
    assert (
        text.index("## End to end")
        < text.index("## Latency batch 1 seq 512")
        < text.index("## Latency batch 8 seq 128")
    )
    assert (
        "| student | ORT int8 | 50.0 | – | 5 | 20.0 | 20.0× | 200 | 50% | int8 | 85.0 | -5.0 | 300 | 2.00 | 66.0M |"
        in text
    )
    assert "- PyTorch CUDA fp16 (teacher, student): no CUDA device" in text
    assert "AutoQuantizationConfig.avx512_vnni" in text
    assert "timing only" not in text
    assert "kept 1.5 of the 4 cores busy" in text and "noisier than on an idle machine" in text


def test_timing_only_runs_say_so() -> None:
    text = render(summary(timing_only=True))
    assert "**timing only, F1 not meaningful**" in text.splitlines()[2]


def test_write_report_writes_markdown_plot_and_json(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    path = write_report(out, summary(), {"benchmarks": [], "version": "x"})
    assert path == out / MARKDOWN
    assert f"]({PLOT})" in path.read_text()
    assert (out / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / JSON).read_text())
    assert data["version"] == "x" and data["docdistill"]["run"]["name"] == "x"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    assert (out / PLOT).stat().st_mode & 0o044  # readable like any other file, not mkstemp's 0600


def test_frontier_keeps_only_undominated_points() -> None:
    points = [(1.0, 0.5), (2.0, 0.4), (3.0, 0.9), (0.5, 0.3), (3.0, 0.8)]
    assert frontier(points) == [(0.5, 0.3), (1.0, 0.5), (3.0, 0.9)]


def test_number_format() -> None:
    assert fmt(None) == "–" and fmt(0) == "0"
    assert fmt(1234.4) == "1,234" and fmt(12.345) == "12.3" and fmt(0.012345) == "0.0123"
