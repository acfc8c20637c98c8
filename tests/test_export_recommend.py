"""The CPU recommendation follows the measured timings: fabricated figures where the answer is known."""

from __future__ import annotations

from typing import Any

from export.recommend import Candidate, choose_cpu, recommend

SHAPES = ("8 x 128", "1 x 128")


def fig(
    ms: tuple[float, float], gate: bool | None = True, invariant: bool = True, **extra: Any
) -> dict[str, Any]:
    """A variant's manifest figures: medians at the two timed shapes, its gate, its batch sensitivity."""
    out: dict[str, Any] = {
        "latency_ms": ms[0],
        "timing": {"shapes": {s: {"median_ms": m} for s, m in zip(SHAPES, ms, strict=True)}, "margin": 0.1},
        "batch_sensitivity": {
            "invariant": invariant,
            "words_changed": 0 if invariant else 30,
            "share_changed": 0.0 if invariant else 0.03,
        },
        **extra,
    }
    if gate is not None:
        out["meets_gate"] = gate
        out["gate"] = {
            "delta_f1_points": 0.0,
            "why_not": None if gate else "loses 3.00 F1 points (budget 1.0)",
        }
    return out


def cpu(variants: dict[str, dict[str, Any]]) -> str | None:
    return recommend(variants, 1.0)["recommended_cpu"]


def test_int8_slower_than_fp32_is_not_recommended() -> None:
    """The issue's case: onnxruntime's int8 passes its gate but is slower than fp32 on this CPU."""
    variants = {"fp32": fig((20.0, 5.0)), "int8": fig((22.0, 5.5), meets_budget=True, invariant=False)}
    assert cpu(variants) == "fp32"
    picked = recommend(variants, 1.0)
    notes = {c["variant"]: c["note"] for c in picked["recommended_cpu_choice"]["candidates"]}
    assert "not faster than fp32" in notes["int8"]


def test_int8_faster_at_one_shape_only_is_not_recommended() -> None:
    """Faster at the export's batch, slower one window at a time (MiniLM 8 x 128 against 1 x 128)."""
    assert cpu({"fp32": fig((20.0, 5.0)), "int8": fig((10.0, 6.0))}) == "fp32"


def test_the_fastest_gated_variant_of_any_runtime_wins_beyond_the_noise() -> None:
    variants = {
        "fp32": fig((20.0, 5.0)),
        "fp32-optimized": fig((18.0, 4.6)),  # 10% and 8% faster: inside a 10% margin at one shape
        "int8": fig((14.0, 4.0), meets_budget=True),
        "openvino": fig((12.0, 3.5), inference_precision="bf16"),
        "openvino-int8": fig((5.0, 1.2)),
    }
    assert cpu(variants) == "openvino-int8"
    assert "openvino-int8 (batch-stable)" in recommend(variants, 1.0)["recommended_cpu_reason"]


def test_a_variant_that_fails_its_gate_is_never_recommended_however_fast() -> None:
    variants = {"fp32": fig((20.0, 5.0)), "openvino-int8": fig((2.0, 0.5), gate=False)}
    assert cpu(variants) == "fp32"
    variants["int8"] = fig((1.0, 0.2), meets_budget=False, gate=None)  # an older manifest's int8 verdict
    assert cpu(variants) == "fp32"


def test_ties_go_to_the_simpler_variant() -> None:
    variants = {
        "fp32": fig((10.0, 2.0)),
        "int8": fig((8.0, 1.5)),  # beats fp32 beyond 10%
        "openvino-int8": fig((7.5, 1.4)),  # within 10% of int8: a tie, the simpler one stays
    }
    assert cpu(variants) == "int8"


def test_batch_stable_variants_are_preferred_unless_another_is_faster_beyond_the_noise() -> None:
    variants = {
        "fp32": fig((20.0, 5.0)),
        "int8": fig((9.5, 2.3), invariant=False),  # dynamic scales: labels move with the batch
        "openvino-int8": fig((10.0, 2.4)),  # static scales, as fast within the noise
    }
    assert cpu(variants) == "openvino-int8"
    variants["int8"] = fig((6.0, 1.5), invariant=False)  # now faster beyond the noise at every shape
    assert cpu(variants) == "int8"


def test_openvino_at_f32_counts_as_full_precision() -> None:
    """On a CPU without bf16 the plugin runs f32: no reduced-precision bar to clear against fp32."""
    slightly = {"fp32": fig((20.0, 5.0)), "openvino": fig((17.0, 4.2), inference_precision="f32")}
    assert Candidate.from_figures("openvino", slightly["openvino"]).reduced is False
    assert cpu(slightly) == "openvino"
    slightly["openvino"]["inference_precision"] = "bf16"
    assert Candidate.from_figures("openvino", slightly["openvino"]).reduced is True
    assert cpu(slightly) == "openvino"  # 15% faster at both shapes: beyond the 10% margin either way


def test_the_margin_is_the_measured_noise() -> None:
    candidates = [
        Candidate("fp32", True, {"a": 10.0}, True),
        Candidate("openvino-int8", True, {"a": 7.0}, True, reduced=True),
    ]
    assert choose_cpu(candidates, margin=0.1)[0] == "openvino-int8"
    assert choose_cpu(candidates, margin=0.5)[0] == "fp32"  # a noisy machine: 1.43x is inside the noise
    # A very busy machine (margin >= 100 %) still lets a big enough speed-up through, as a ratio.
    much = [candidates[0], Candidate("openvino-int8", True, {"a": 3.0}, True, reduced=True)]
    assert choose_cpu(much, margin=1.2)[0] == "openvino-int8"  # 3.3x > 2.2x
    assert choose_cpu(much, margin=2.5)[0] == "fp32"  # 3.3x < 3.5x


def test_an_int8_that_failed_its_gate_is_never_recommended() -> None:
    """Issue 30, defect 1: with no gated variant, the old fallback recommended the failed int8."""
    picked = recommend({"int8": fig((5.0, 1.0), meets_budget=False, gate=None)}, 1.0)
    assert picked["recommended_cpu"] is None
    assert "int8 fails its gate (outside the F1 budget)" in picked["recommended_cpu_reason"]
    both = {"int8": fig((5.0, 1.0), gate=False), "openvino-int8": fig((4.0, 1.0), gate=False)}
    picked = recommend(both, 1.0)
    assert picked["recommended_cpu"] is None
    reason = picked["recommended_cpu_reason"]
    assert "int8 fails its gate (loses 3.00" in reason and "openvino-int8 fails its gate" in reason
    assert "the only CPU variant" not in reason
    assert recommend({}, 1.0)["recommended_cpu"] is None


def test_with_a_failed_int8_the_full_precision_variant_is_recommended() -> None:
    picked = recommend({"fp32": fig((20.0, 5.0)), "int8": fig((5.0, 1.0), gate=False)}, 1.0)
    assert picked["recommended_cpu"] == "fp32" and "int8 fails its gate" in picked["recommended_cpu_reason"]


def test_rounding_noise_in_the_batch_is_not_batch_sensitivity() -> None:
    """0.1% of words moved by rounding at another padded length (OpenVINO bf16 / NNCF's static int8)
    counts as stable; 3% moved by a batch-wide dynamic scale (onnxruntime's int8) does not."""
    noise = {"invariant": False, "words_changed": 5, "share_changed": 0.001}
    assert Candidate.from_figures("openvino-int8", {"batch_sensitivity": noise}).invariant is True
    scales = {"invariant": False, "words_changed": 148, "share_changed": 0.032}
    assert (
        Candidate.from_figures("int8", {"meets_gate": True, "batch_sensitivity": scales}).invariant is False
    )
    variants = {
        "fp32": fig((20.0, 5.0)),
        "int8": fig((9.5, 2.3), invariant=False),  # simpler, as fast within the noise, batch-dependent
        "openvino-int8": {**fig((10.0, 2.4)), "batch_sensitivity": noise},
    }
    assert cpu(variants) == "openvino-int8"


def test_a_reduced_precision_variant_must_beat_fp32_even_when_fp32_is_the_batch_sensitive_one() -> None:
    """Batch-stable variants are tried first, but int8 slower than fp32 still never wins."""
    variants = {
        "fp32": fig((20.0, 5.0), invariant=False),
        "fp32-optimized": fig((19.0, 4.9), invariant=False),
        "openvino-int8": fig((21.0, 5.5)),  # stable, slower than both fp32 graphs
    }
    assert cpu(variants) == "fp32"
