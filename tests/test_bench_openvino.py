"""The bench's OpenVINO side: its rows' int8 share read from the IR, its GEMM probes, the bf16 rows,
the OpenVINO + NNCF reference built without the export's code, and the headline's targets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.report import render
from tests.test_bench_limits import _attention_like
from tests.test_bench_report import GFLOP, row, summary

REPO = Path(__file__).resolve().parents[1]


def _onnx_students_reference(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny ONNX graph (a weight GEMM, an activation product) and the NNCF-defaults IR of it."""
    from bench.reference import quantize_with_openvino_defaults

    fp32 = tmp_path / "fp32.onnx"
    _attention_like(fp32)
    rng = np.random.default_rng(0)
    samples = [{"x": rng.standard_normal((4, 8)).astype(np.float32)} for _ in range(8)]
    # The graph's input is x, not a window's input_ids: what reaches NNCF is named as the graph wants.
    path, recipe = quantize_with_openvino_defaults(
        fp32, tmp_path / "reference", [{**s, "input_ids": s["x"]} for s in samples]
    )
    assert "nncf.quantize(model, nncf.Dataset(samples)) with NNCF's defaults" in recipe
    return fp32, path


def test_the_openvino_reference_is_int8_read_from_its_ir(tmp_path: Path) -> None:
    from bench.quantised import ir_share
    from distill.predict import OvBackend

    fp32, ir = _onnx_students_reference(tmp_path)
    share = ir_share(ir)
    assert share.linear == 1.0  # the weight GEMM runs u8 x i8
    import openvino as ov

    from bench.quantised import model_share

    assert model_share(ov.convert_model(str(fp32))).linear == 0.0  # the float graph: nothing in int8
    out = OvBackend(ir)({"x": np.ones((4, 8), dtype=np.float32)})
    assert out.shape == (4, 4) and np.isfinite(out).all()


def test_the_reference_rows_are_built_without_the_exports_code() -> None:
    """bench/reference.py imports nothing of `export`, and loading it (and what the bench needs to run the
    references) pulls no export module in: a reference sharing the export's code would share its mistakes."""
    tree = ast.parse((REPO / "bench" / "reference.py").read_text())
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported if m == "export" or m.startswith("export.")}, imported
    code = "import sys, bench.reference; print(sorted(m for m in sys.modules if m.split('.')[0] == 'export'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_openvino_gemm_probes_run_and_bf16_ones_skip_where_bf16_is_emulated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import limits

    probes = {k.name: k for k in limits.kernels([(16, 32, 64)]) if (k.m, k.k, k.n) == (16, 32, 64)}
    for name in ("openvino FullyConnected f32", "openvino FullyConnected u8s8"):
        probes[name].build(1)()  # compiles and runs
    assert probes["openvino FullyConnected u8s8"].precision == "int8"
    assert probes["openvino FullyConnected bf16"].needs_bf16 == "openvino"
    assert probes["torch matmul bf16"].precision == "bf16"
    import distill.hardware as hardware
    import distill.predict.openvino_runtime as ovr

    monkeypatch.setattr(ovr, "default_precision", lambda: "f32")
    assert "runs f32 here" in limits.bf16_reason("openvino")
    monkeypatch.setattr(hardware, "cpu_features", lambda: ("AVX2", frozenset({"avx2", "fma"})))
    assert "no native bf16" in limits.bf16_reason("torch")


def test_pytorch_bf16_autocast_runs_only_where_bf16_is_native(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import distill.hardware as hardware
    from bench.runtimes import BY_NAME, Unavailable, check_available, torch_backend
    from distill.builders import tiny_student
    from distill.schema import FUNSD_LABELS

    runtime = BY_NAME["torch-bf16"]
    monkeypatch.setattr(hardware, "cpu_features", lambda: ("AVX2", frozenset({"avx2", "fma"})))
    with pytest.raises(Unavailable, match="no native bf16"):
        check_available(runtime)
    monkeypatch.setattr(hardware, "cpu_features", lambda: ("AVX512", frozenset({"avx512f", "avx512_bf16"})))
    check_available(runtime)  # native: the row runs
    model = tiny_student(["a", "b", "c"] * 20, FUNSD_LABELS).model
    batch = {"input_ids": np.ones((1, 6), dtype=np.int64), "attention_mask": np.ones((1, 6), dtype=np.int64)}
    backend = torch_backend(model, runtime, 1)
    assert backend.autocast_dtype == torch.bfloat16
    assert next(backend.model.parameters()).dtype == torch.float32  # weights stay fp32 under autocast
    reference = torch_backend(model, BY_NAME["torch-fp32"], 1)(batch)
    assert np.abs(backend(batch) - reference).max() < 0.1


def test_bf16_rows_are_held_against_the_bf16_limit() -> None:
    from bench.report_tables import derive

    data = summary()
    data["limits"] = {"fp32": 100 * GFLOP, "int8": 400 * GFLOP, "bf16": 200 * GFLOP}
    # OpenVINO int8 with its float layers in bf16: 8 GFLOP at 400 + 2 GFLOP at 200 = 0.03 s; measured 0.06 s.
    data["rows"] = [
        row(
            "student",
            "ov-int8",
            "OpenVINO int8 (NNCF)",
            0.06,
            flops=10 * GFLOP,
            flops_int8=8 * GFLOP,
            float_precision="bf16",
        ),
        row(
            "student",
            "torch-bf16",
            "PyTorch bf16 autocast",
            0.1,
            flops=10 * GFLOP,
            flops_int8=0,
            float_precision="bf16",
        ),
    ]
    rows = {r["runtime"]: r for r in derive(data)}
    assert (
        rows["ov-int8"]["limit_mix"] == "int8 80% + bf16 20%" and abs(rows["ov-int8"]["share"] - 0.5) < 1e-9
    )
    assert rows["torch-bf16"]["limit_mix"] == "bf16" and abs(rows["torch-bf16"]["share"] - 0.5) < 1e-9


def _recommended(ov_ms: float, optimum_ms: float, reference_ms: float, e2e_forms_s: float) -> str:
    data = summary()
    data["limits"] = {"fp32": 100 * GFLOP, "int8": 400 * GFLOP, "bf16": 200 * GFLOP}
    data["notes"] = {**data["notes"], "recommended_cpu": {"student": "openvino-int8", "teacher": "openvino"}}
    e2e = {"group": "end-to-end", "forms": 10, "sequences": 12}
    data["rows"] += [
        row(
            "student",
            "ov-int8",
            "OpenVINO int8 (NNCF)",
            ov_ms / 1000,
            flops=10 * GFLOP,
            flops_int8=10 * GFLOP,
        ),
        row("student", "openvino-nncf-defaults", "OpenVINO int8, NNCF defaults", reference_ms / 1000),
        row("student", "ov-int8", "OpenVINO int8 (NNCF)", 10 / e2e_forms_s, **e2e),
        row("student", "optimum-int8", "ORT int8, optimum defaults", 0.5, **e2e),
        row("student", "openvino-nncf-defaults", "OpenVINO int8, NNCF defaults", 0.25, **e2e),
        row("teacher", "ov", "OpenVINO, CPU default precision", 5.0, **e2e),
    ]
    data["rows"] = [
        r for r in data["rows"] if not (r["runtime"] == "optimum-int8" and r["group"] != "end-to-end")
    ]
    data["rows"].append(row("student", "optimum-int8", "ORT int8, optimum defaults", optimum_ms / 1000))
    return render(data, plot_name=None).split("## Headline")[1].split("\n## ")[0]


def test_the_headline_holds_the_recommended_variant_to_every_target() -> None:
    # 25 ms at batch 1 x 512 (10 GFLOP all int8 at 400 GOP/s: 100% of the limit); 60 forms/s end to end.
    headline = _recommended(ov_ms=25, optimum_ms=100, reference_ms=30, e2e_forms_s=60)
    assert (
        "Student in the recommended CPU variant `openvino-int8` (OpenVINO int8 (NNCF)) serves **120.0×**"
        in headline
    )
    assert "target ≥ 30×: **met**" in headline
    assert "teacher's own recommended CPU variant (`openvino`, 2.00 forms/s): **30.0×**" in headline
    assert "**100%** of this machine's limit" in headline and "target ≥ 70%: **met**" in headline
    assert "end to end **3.00×**, batch 1 seq 512 **4.00×**" in headline
    assert "target ≥ 2.0× at every one: **met** (lowest 3.00×)" in headline
    assert "end to end **1.50×**, batch 1 seq 512 **1.20×**" in headline
    assert "target ≥ 1.0× at every one: **met** (lowest 1.20×)" in headline


def test_the_headline_says_when_a_target_is_not_met() -> None:
    headline = _recommended(ov_ms=50, optimum_ms=200, reference_ms=40, e2e_forms_s=10)
    assert "**20.0×**" in headline and "target ≥ 30×: **not met**" in headline  # 10 forms/s against 0.5
    assert "target ≥ 70%: **not met**" in headline  # 50% of the limit
    # 4x faster at batch 1 x 512, but half optimum's 20 forms/s end to end: every comparison must reach it.
    assert "target ≥ 2.0× at every one: **not met** (lowest 0.50×)" in headline
    assert "target ≥ 1.0× at every one: **not met** (lowest 0.25×)" in headline
