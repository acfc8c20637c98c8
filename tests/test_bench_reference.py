"""The optimum reference row: a speed claim against it only where the two recipes differ."""

from __future__ import annotations

from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

from bench.report import render
from tests.test_bench_limits import _attention_like
from tests.test_bench_report import summary


def test_identical_recipes_make_no_speed_claim() -> None:
    data = summary()
    data["notes"] = {**data["notes"], "reference_same_model": True, "int8_method": "dynamic-unfused"}
    text = render(data, plot_name=None)
    headline = text.split("## Headline")[1].split("\n## ")[0]
    assert "× as fast" not in headline and "forms/s for the optimum-defaults reference" not in headline
    assert "(`dynamic-unfused`) is optimum's own recipe plus the accuracy gate" in headline
    assert "no speed claim" in headline
    assert "same model as the student's int8 variant" in text


def test_different_recipes_keep_the_comparison() -> None:
    data = summary()
    data["notes"] = {**data["notes"], "reference_same_model": False}
    assert "**2.00×** as fast" in render(data, plot_name=None)


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
