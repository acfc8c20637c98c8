"""Machine description, limits bookkeeping, round planning and synthetic inputs of the bench."""

from __future__ import annotations

import numpy as np
from transformers import DistilBertConfig, LayoutLMv3Config

from bench.inputs import synthetic_batch
from bench.limits import best_rates, kernels
from bench.machine import isa_flags, machine_info, package_versions, quantization_target
from bench.summary import timing_stats
from bench.timing import MAX_ROUNDS, plan_rounds


def test_isa_flags_are_normalised_and_ordered() -> None:
    flags = ["avx512vnni", "avx2", "sse4_2", "avx512f", "fma", "mmx", "AVX512_BF16"]
    assert isa_flags(flags) == ["sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert isa_flags([]) == []


def test_quantization_target_follows_the_cpu() -> None:
    assert quantization_target(["avx2", "avx512f", "avx512_vnni"], "x86_64") == "avx512_vnni"
    assert quantization_target(["avx2", "avx512f"], "x86_64") == "avx512"
    assert quantization_target(["avx2"], "x86_64") == "avx2"
    assert quantization_target([], "aarch64") == "arm64"


def test_machine_info_names_cpu_threads_and_versions() -> None:
    info = machine_info(threads=3)
    assert info.cpu and info.physical_cores >= 1 and info.logical_cores >= info.physical_cores
    assert info.threads == 3
    assert info.gpu  # "none" without CUDA
    versions = package_versions()
    for name in ("torch", "transformers", "onnxruntime", "optimum"):
        assert name in versions
    assert info.as_dict()["versions"] == info.versions


def test_best_rate_per_precision() -> None:
    assert best_rates([("fp32", 1.0), ("int8", 5.0), ("fp32", 3.0)]) == {"fp32": 3.0, "int8": 5.0}


def test_every_precision_a_runtime_is_held_against_has_a_kernel() -> None:
    from bench.runtimes import RUNTIMES

    measured = {k.precision for k in kernels()}
    assert {r.limit for r in RUNTIMES} <= measured


def test_plan_rounds_fits_the_time_budget_with_a_floor() -> None:
    assert plan_rounds(0.01, max_time=1.0, min_rounds=5) == (20, 100)  # 0.2 s of warm-up, 1 s of rounds
    assert plan_rounds(2.0, max_time=1.0, min_rounds=5) == (0, 5)  # slow: the sizing call was the warm-up
    assert plan_rounds(1e-9, max_time=1.0, min_rounds=5)[1] == MAX_ROUNDS


def test_timing_stats_percentiles() -> None:
    stats = timing_stats([float(i) for i in range(1, 101)])
    assert stats["p50_s"] == 50.5 and abs(stats["p95_s"] - 95.05) < 1e-9 and stats["rounds"] == 100


def test_synthetic_batches_are_valid_model_inputs() -> None:
    text = synthetic_batch(DistilBertConfig(vocab_size=100), batch=2, length=7)
    assert set(text) == {"input_ids", "attention_mask"}
    assert text["input_ids"].shape == (2, 7) and text["input_ids"].max() < 100

    v3 = LayoutLMv3Config(vocab_size=100, input_size=32, hidden_size=16, coordinate_size=2, shape_size=4)
    batch = synthetic_batch(v3, batch=3, length=5)
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    boxes = batch["bbox"]
    assert boxes.shape == (3, 5, 4) and boxes.min() >= 0 and boxes.max() <= 1000
    assert np.all(boxes[..., 0] <= boxes[..., 2]) and np.all(boxes[..., 1] <= boxes[..., 3])
