"""The int8 accuracy gate: which attempt is kept, and what is recommended when none qualifies."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from export.pipeline import recommend
from export.quantize import LADDER, AttemptResult, choose, meets, sensitive_matmuls


def result(
    name: str, f1: float, latency: float, reference: float = 0.80, budget: float = 1.0
) -> AttemptResult:
    return AttemptResult(name, name, {}, f1=f1, latency_ms=latency, meets_budget=meets(f1, reference, budget))


def test_budget_is_in_f1_points() -> None:
    assert meets(0.791, 0.80, 1.0) and meets(0.79, 0.80, 1.0)
    assert not meets(0.789, 0.80, 1.0)
    assert meets(0.85, 0.80, 0.0)


def test_the_fastest_attempt_within_budget_is_kept() -> None:
    attempts = [
        result("dynamic", 0.70, 10.0),
        result("dynamic-per-channel", 0.795, 10.5),
        result("static-qdq", 0.80, 9.0),
    ]
    assert choose(attempts).name == "static-qdq"


def test_a_later_attempt_must_be_clearly_faster_to_replace_an_earlier_one() -> None:
    attempts = [result("dynamic", 0.80, 10.0), result("dynamic-per-channel", 0.80, 9.5)]
    assert choose(attempts).name == "dynamic"


def test_nothing_within_budget_keeps_fp32_recommended() -> None:
    attempts = [result("dynamic", 0.50, 5.0), result("static-qdq", 0.60, 6.0)]
    assert choose(attempts) is None
    variants = {
        "fp32": {"latency_ms": 20.0},
        "fp32-optimized": {"latency_ms": 15.0},
        "int8": {"meets_budget": False, "method": "static-qdq", "delta_f1_points": -20.0},
    }
    picked = recommend(variants, 1.0)
    assert picked["recommended_cpu"] == "fp32-optimized"
    assert "no int8 attempt met the F1 budget" in picked["recommended_cpu_reason"]
    assert (
        recommend(
            {**variants, "int8": {**variants["int8"], "meets_budget": True, "delta_f1_points": -0.5}}, 1.0
        )["recommended_cpu"]
        == "int8"
    )


def test_ladder_order_and_names() -> None:
    assert [a.name for a in LADDER] == [
        "dynamic-unfused",
        "dynamic",
        "dynamic-per-channel",
        "dynamic-reduced-range",
        "dynamic-keep-sensitive",
        "static-qdq",
    ]


def test_sensitive_matmuls_are_the_classifier_and_attention_outputs() -> None:
    names = [
        "/distilbert/transformer/layer.0/attention/out_lin/MatMul",
        "/layoutlm/encoder/layer.0/attention/output/dense/MatMul",
        "/layoutlm/encoder/layer.0/intermediate/dense/MatMul",
        "/classifier/MatMul",
    ]
    nodes = [helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"], name=n) for i, n in enumerate(names)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [])
    found = sensitive_matmuls(helper.make_model(graph))
    assert found == [names[0], names[1], names[3]]
    assert isinstance(found, list) and onnx.__version__
