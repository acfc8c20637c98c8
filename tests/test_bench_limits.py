"""% of machine limit is a bound: best probes over the models' own shapes, each row against the mix it runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from bench.limits import kernels
from bench.report import render
from bench.report_tables import derive
from tests.test_bench_report import GFLOP, row, summary

LIMITS = {"fp32": 100 * GFLOP, "int8": 400 * GFLOP}


def test_int8_rows_are_held_against_the_mix_they_run() -> None:
    data = summary()
    # 10 GFLOP, 8 of them in int8: at best 8/400 + 2/100 = 0.04 s; measured 0.05 s -> 80%, not 200/400 = 50%.
    data["rows"] = [row("student", "ort-int8", "ORT int8", 0.05, flops=10 * GFLOP, flops_int8=8 * GFLOP)]
    (derived,) = derive(data)
    assert abs(derived["share"] - 0.8) < 1e-9
    assert derived["limit_mix"] == "int8 80% + fp32 20%"
    assert "| 80% | int8 80% + fp32 20% |" in render(data, plot_name=None)


def test_fp32_rows_name_their_limit_too() -> None:
    data = summary()
    data["rows"] = [row("teacher", "torch-fp32", "PyTorch fp32", 1.0, flops=50 * GFLOP, flops_int8=0)]
    (derived,) = derive(data)
    assert abs(derived["share"] - 0.5) < 1e-9 and derived["limit_mix"] == "fp32"


def test_a_row_faster_than_the_limit_says_the_probe_was_beaten() -> None:
    data = summary()
    data["rows"] = [row("student", "ort-fp32", "ORT fp32", 0.05, flops=10 * GFLOP, flops_int8=0)]  # 200 > 100
    text = render(data, plot_name=None)
    assert "200% (probe beaten)" in text
    assert "The limit probe was beaten" in text and "student / ORT fp32" in text


def test_the_limit_is_each_probes_best_round() -> None:
    from bench.summary import limit_probes

    rows = [
        {
            "kind": "limit",
            "kernel": "k",
            "precision": "fp32",
            "flops": 100,
            "min_s": 1.0,
            "p50_s": 2.0,
            "shape": [1, 1, 1],
        }
    ]
    assert limit_probes(rows)[0]["rate"] == 100.0  # the fastest round, not the median's 50


def test_limit_probes_include_the_models_own_gemm_shapes() -> None:
    shapes = {(k.m, k.k, k.n) for k in kernels([(4096, 768, 3072), (4096, 3072, 768)])}
    assert {(2048, 2048, 2048), (4096, 768, 3072), (4096, 3072, 768)} <= shapes
    by_precision = {(k.precision, k.m, k.k, k.n) for k in kernels([(512, 64, 128)])}
    assert ("fp32", 512, 64, 128) in by_precision and ("int8", 512, 64, 128) in by_precision


def _attention_like(path: Path) -> None:
    """x @ W (a weight GEMM), then y @ y^T (an activation product, as attention's Q.K^T)."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 8), dtype=np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["y"], name="dense/MatMul"),
        helper.make_node("Transpose", ["y"], ["yt"], perm=[1, 0]),
        helper.make_node("MatMul", ["y", "yt"], ["z"], name="attention/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))


def test_what_is_int8_is_read_from_the_graph(tmp_path: Path) -> None:
    from bench.quantised import graph_share

    fp32 = tmp_path / "fp32.onnx"
    _attention_like(fp32)
    assert graph_share(onnx.load(str(fp32))).linear == 0.0
    every = tmp_path / "every.onnx"  # optimum's recipe: attention's activation products too
    quantize_dynamic(
        str(fp32), str(every), weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": False}
    )
    share = graph_share(onnx.load(str(every)))
    assert share.linear == 1.0 and share.attention == 1.0
    weights_only = tmp_path / "weights.onnx"
    quantize_dynamic(
        str(fp32), str(weights_only), weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True}
    )
    share = graph_share(onnx.load(str(weights_only)))
    assert share.linear == 1.0 and share.attention == 0.0
