"""The report's CUDA rows when only `-k cuda` ran (the GPU check): ΔF1, F1 and device memory."""

from __future__ import annotations

from bench.report import render
from bench.report_tables import derive
from bench.runtimes import BY_NAME
from bench.summary import stated_on_cuda
from tests.test_bench_report import row, summary


def cuda_only(reference_f1: float | None) -> dict:
    data = summary()
    data["rows"] = [
        row("teacher", "torch-cuda-fp32", "PyTorch CUDA fp32", 0.01, f1=0.88, limit_precision="cuda-fp32"),
        row(
            "student",
            "torch-cuda-fp16",
            "PyTorch CUDA fp16",
            0.002,
            f1=0.85,
            limit_precision="cuda-fp16",
            memory_mib=300.0,
            torch_allocated_mib=120.0,
        ),
    ]
    data["reference_f1"] = reference_f1
    return data


def test_delta_f1_of_a_cuda_only_run_is_against_the_teachers_stated_f1() -> None:
    rows = {r["runtime"]: r for r in derive(cuda_only(0.9))}
    assert abs(rows["torch-cuda-fp16"]["delta_f1"] - (-5.0)) < 1e-9  # not "–": the CPU row did not run
    assert abs(rows["torch-cuda-fp32"]["delta_f1"] - (-2.0)) < 1e-9
    assert {r["delta_f1"] for r in derive(cuda_only(None))} == {None}  # no teacher F1 anywhere: no ΔF1


def test_pytorchs_own_peak_allocation_is_shown_beside_the_device_memory() -> None:
    text = render(cuda_only(0.9), plot_name=None)
    assert "| 85.0 | -5.0 | 300 (120 alloc) |" in text


def test_an_ort_cuda_row_takes_the_files_f1_only_where_the_export_scored_it_on_cuda() -> None:
    manifest = {"models": {"student": {"variants": {"fp16": {"f1": 0.8, "scored_on": "CPU"}}}}}
    assert not stated_on_cuda(manifest, "student", BY_NAME["ort-cuda-fp16"])
    manifest["models"]["student"]["variants"]["fp16"]["scored_on"] = "CUDA"
    assert stated_on_cuda(manifest, "student", BY_NAME["ort-cuda-fp16"])
    assert not stated_on_cuda(manifest, "student", BY_NAME["torch-cuda-fp32"])  # metrics.json is a CPU score
