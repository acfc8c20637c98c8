"""GPU readiness checked on the CPU: node placement read from a profiled call, CUDA rows skip with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.placement import compute_on_cpu, node_placement
from bench.runtimes import BY_NAME, RUNTIMES, Unavailable, check_available, cuda_reason, device_call
from tests.test_bench_limits import _attention_like


def test_placement_is_read_per_provider_and_op(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    _attention_like(path)
    placement = node_placement(path, ["CPUExecutionProvider"], {"x": np.ones((4, 8), dtype=np.float32)})
    on_cpu = compute_on_cpu(placement)  # onnxruntime may fuse the transpose in: MatMul + FusedMatMul
    assert sum(on_cpu.values()) == 2 and set(on_cpu) <= {"MatMul", "FusedMatMul"}
    assert sum(placement["CPUExecutionProvider"].values()) >= 2  # in a CUDA session this row would be refused
    assert (
        compute_on_cpu({"CPUExecutionProvider": {"Shape": 3}, "CUDAExecutionProvider": {"MatMul": 2}}) == {}
    )


def test_gpu_rows_have_a_cuda_fp32_baseline_and_skip_with_a_reason_here() -> None:
    cuda = [r for r in RUNTIMES if r.is_cuda]
    assert {"torch-cuda-fp32", "ort-cuda-fp32", "ort-cuda-fp16"} <= {r.name for r in cuda}
    assert BY_NAME["ort-cuda-fp16"].variant == "fp16" and BY_NAME["torch-cuda-fp32"].limit == "cuda-fp32"
    if cuda_reason() is None:
        return  # a GPU machine: bench/gpu_check.sh exercises these rows
    try:
        check_available(BY_NAME["ort-cuda-fp32"])
    except Unavailable as reason:
        assert "CUDA" in str(reason)
    else:
        raise AssertionError("a CUDA row must not run without a CUDA device")


def test_cpu_rows_are_timed_as_users_call_them() -> None:
    calls = []

    def backend(batch: dict) -> str:
        calls.append(batch)
        return "logits"

    batch = {"input_ids": np.ones((1, 4), dtype=np.int64)}
    assert device_call(backend, batch)() == "logits" and calls == [batch]  # type: ignore[arg-type]
