"""The optimum reference row: a speed claim against it only where the two recipes differ."""

from __future__ import annotations

from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

from bench.report import render
from tests.test_bench_limits import _attention_like
from tests.test_bench_report import row, summary


def test_identical_recipes_make_no_speed_claim() -> None:
    data = summary()
    data["notes"] = {**data["notes"], "reference_same_model": True, "int8_method": "dynamic-unfused"}
    text = render(data, plot_name=None)
    headline = text.split("## Headline")[1].split("\n## ")[0]
    assert "× as fast" not in headline and "forms/s for the optimum-defaults reference" not in headline
    assert "(`dynamic-unfused`) is optimum's own recipe plus the accuracy gate" in headline
    assert "no speed claim" in headline
    assert "same model as the student's int8 variant" in text


def _with_reference_at_batch_8(ours_s: float, theirs_s: float) -> str:
    data = summary()
    data["notes"] = {**data["notes"], "reference_same_model": False}
    shape = {"group": "latency batch 8 seq 128", "batch": 8, "seq": 128, "seq_requested": 128}
    data["rows"] += [
        row("student", "ort-int8", "ORT int8", ours_s, **shape),
        row("student", "optimum-int8", "ORT int8, optimum defaults", theirs_s, **shape),
    ]
    return render(data, plot_name=None).split("## Headline")[1].split("\n## ")[0]


def test_different_recipes_are_compared_at_every_shape_and_claim_speed_only_if_all_agree() -> None:
    # Batch 1 / 512: ours 50 ms against optimum's 100 ms; batch 8 / 128 decides the verdict.
    headline = _with_reference_at_batch_8(ours_s=0.4, theirs_s=0.3)
    assert "batch 1 seq 512 **2.00×**, batch 8 seq 128 **0.75×**" in headline
    assert "faster at 1 of 2 comparisons, slower at the rest: **no speed claim**" in headline
    headline = _with_reference_at_batch_8(ours_s=0.3, theirs_s=0.4)
    assert "faster at every one of the 2 comparisons" in headline and "no speed claim" not in headline


def test_same_model_compares_operators_and_weights(tmp_path: Path) -> None:
    from bench.reference import same_model

    fp32 = tmp_path / "fp32.onnx"
    _attention_like(fp32)
    paths = {}
    for name, per_channel in (("a", True), ("b", True), ("c", False)):
        paths[name] = tmp_path / f"{name}.onnx"
        quantize_dynamic(str(fp32), str(paths[name]), per_channel=per_channel, weight_type=QuantType.QInt8)
    assert same_model(paths["a"], paths["b"])  # one recipe, two files
    assert not same_model(paths["a"], paths["c"])  # per-channel vs per-tensor scales
    assert not same_model(paths["a"], fp32)


def test_an_int8_variant_exported_for_another_isa_is_warned_about() -> None:
    from bench.summary import isa_warnings

    lines = isa_warnings({"student": "avx2", "teacher": "avx512_vnni", "other": None}, "avx512_vnni")
    assert (
        len(lines) == 1
        and "student's int8 was exported for AVX2 (no VNNI), this machine is AVX-512 VNNI" in lines[0]
    )
    data = summary()
    data["notes"] = {**data["notes"], "isa_mismatch": lines[0]}
    assert "**Warning, int8 exported for another CPU**" in render(data, plot_name=None)
