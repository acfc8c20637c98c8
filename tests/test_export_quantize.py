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


def test_the_plain_recipe_wins_unless_another_is_faster_beyond_the_noise() -> None:
    attempts = [
        result("dynamic-unfused", 0.80, 10.0),
        result("dynamic", 0.80, 8.5),
        result("static-qdq", 0.80, 8.0),
    ]
    assert choose(attempts, margin=0.25).name == "dynamic-unfused"  # 20% faster, inside a 25% noise margin
    assert choose(attempts, margin=0.10).name == "static-qdq"  # beyond it: the fastest
    # The plain recipe is the first rung through the gate, whatever its place in the ladder.
    assert choose([result("dynamic-unfused", 0.50, 5.0), *attempts[1:]], margin=0.10).name == "dynamic"


def test_reduce_range_is_not_tried_on_a_vnni_cpu() -> None:
    from export.isa import int8_isa
    from export.quantize import ATTEMPTS, skip_reason

    reduced = ATTEMPTS["dynamic-reduced-range"]
    assert "VNNI" in skip_reason(reduced, "avx512_vnni")
    assert skip_reason(reduced, "avx2") is None and skip_reason(ATTEMPTS["dynamic"], "avx512_vnni") is None
    assert int8_isa(["avx2", "avx512bw", "avx512_vnni"], "x86_64") == "avx512_vnni"
    assert int8_isa(["avx2", "avx512bw"], "x86_64") == "avx512" and int8_isa(["avx2"], "x86_64") == "avx2"
    assert int8_isa(["avx2", "avx_vnni"], "x86_64") == "avx_vnni" and int8_isa([], "aarch64") == "arm64"


def test_the_gate_refuses_low_agreement_and_collapse_even_when_f1_barely_moves() -> None:
    import numpy as np

    from export.validate import collapse_reason, gate, word_agreement

    reference = np.zeros((100, 3), dtype=np.float32)  # merged word logits of one form
    reference[:60, 0] = 1.0  # fp32: label 0 on 60 words, label 1 on 40
    reference[60:, 1] = 1.0
    flipped = reference.copy()
    flipped[55:60] = [0.0, 1.0, 0.0]  # 5 words change label: 95% agreement
    agreement, words = word_agreement([reference], [flipped])
    assert (agreement, words) == (0.95, 100)
    verdict = gate(0.80, 0.80, agreement, collapse_reason([reference], [flipped]), 1.0, 0.97, words)
    assert not verdict["passes"] and "word agreement 95.00% below the floor 97%" in verdict["why_not"]

    collapsed = np.zeros_like(reference)
    collapsed[:, 0] = 1.0  # label 0 on every word
    reason = collapse_reason([reference], [collapsed])
    assert reason and "100.0% of words (fp32: 60.0%)" in reason
    verdict = gate(0.80, 0.80, word_agreement([reference], [collapsed])[0], reason, 1.0, 0.0)
    assert not verdict["passes"] and "collapsed" in verdict["why_not"]
    assert gate(0.795, 0.80, 1.0, None, 1.0, 0.97)["passes"]


def test_fp16_that_fails_its_gate_is_not_recommended_for_gpus() -> None:
    variants = {
        "fp32-optimized": {"latency_ms": 15.0},
        "fp16": {"meets_gate": False, "gate": {"why_not": "argmax agreement 90.00% below the floor 99%"}},
    }
    picked = recommend(variants, 1.0)
    assert (
        picked["recommended_gpu"] == "fp32-optimized"
        and "below the floor" in picked["recommended_gpu_reason"]
    )
    assert recommend({**variants, "fp16": {"meets_gate": True}}, 1.0)["recommended_gpu"] == "fp16"


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
    assert "int8 fails its gate (outside the F1 budget)" in picked["recommended_cpu_reason"]
    passing = {**variants["int8"], "meets_budget": True, "delta_f1_points": -0.5, "latency_ms": 5.0}
    assert recommend({**variants, "int8": passing}, 1.0)["recommended_cpu"] == "int8"


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


def test_the_plain_fp32_export_is_recommended_unless_the_optimised_one_is_faster_beyond_the_noise() -> None:
    variants = {
        "fp32": {"latency_ms": 20.0},
        "fp32-optimized": {"latency_ms": 19.0, "timing": {"margin": 0.1}},
    }
    assert recommend(variants, 1.0)["recommended_cpu"] == "fp32"  # 5% faster: inside the noise
    variants["fp32-optimized"]["timing"]["margin"] = 0.02
    assert recommend(variants, 1.0)["recommended_cpu"] == "fp32-optimized"


def test_the_recommendation_says_when_the_test_split_disagrees_with_the_gate() -> None:
    """The gate chose int8; a test-split loss beyond the budget is said, never called 'within'."""
    int8 = {"meets_budget": True, "method": "dynamic", "gate": {"delta_f1_points": -0.3}}
    beyond = recommend({"int8": {**int8, "delta_f1_points": -1.39}}, 1.0)["recommended_cpu_reason"]
    assert "gate -0.30 F1 points" in beyond and "-1.39 F1 points, **beyond** the budget" in beyond
    assert "within" not in beyond
    inside = recommend({"int8": {**int8, "delta_f1_points": -0.4}}, 1.0)["recommended_cpu_reason"]
    assert "-0.40 F1 points, within the budget of -1.0" in inside
