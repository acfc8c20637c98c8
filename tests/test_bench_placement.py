"""GPU readiness checked on the CPU: node placement read from a profiled call, CUDA rows skip with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.placement import CPU, NodeRun, placement, profile_nodes, refusal
from bench.runtimes import BY_NAME, RUNTIMES, Unavailable, check_available, cuda_reason, device_call
from tests.test_bench_limits import _attention_like

CUDA = "CUDAExecutionProvider"


def test_placement_is_read_per_provider_and_op_from_a_profiled_call(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    _attention_like(path)
    nodes = profile_nodes(path, [CPU], {"x": np.ones((4, 8), dtype=np.float32)})
    on_cpu = placement(nodes)[CPU]  # onnxruntime may fuse the transpose in: MatMul + FusedMatMul
    assert sum(on_cpu.values()) == 2 and set(on_cpu) <= {"MatMul", "FusedMatMul"}
    assert all(n.seconds >= 0 and n.outputs and n.outputs[0][0] == "float" for n in nodes)
    assert {n.largest() for n in nodes} == {32, 16}  # [4, 8] and [4, 4]
    assert refusal(nodes, tokens=4)  # in a CUDA session this row would be refused


def node(op: str, provider: str, seconds: float, kind: str = "float", elements: int = 64) -> NodeRun:
    return NodeRun(f"{op}_{provider[:3]}", op, provider, seconds, ((kind, elements),))


def test_shape_arithmetic_may_stay_on_the_cpu_per_token_data_and_cpu_time_may_not() -> None:
    gpu = [node("MatMul", CUDA, 1.0), node("Softmax", CUDA, 1.0)]
    shapes = [node("Shape", CPU, 0.5, "int64", 3), node("Concat", CPU, 0.5, "int64", 16)]
    assert refusal(gpu + shapes, tokens=16) is None  # half the time, but only shape arithmetic
    # LayoutLMv3's relative positions: an int64 [seq, seq] table built on the CPU, however fast.
    table = refusal(gpu + [node("Where", CPU, 0.001, "int64", 256)], tokens=16)
    assert table and "per-token tensors on or to the CPU in Where x1 (up to 256 elements" in table
    # Small float work on the CPU: refused once it takes more than a small share of the time.
    assert refusal(gpu + [node("Cast", CPU, 0.01, "float", 4)], tokens=16) is None
    slow = refusal(gpu + [node("Cast", CPU, 0.5, "float", 4)], tokens=16)
    assert slow and slow.startswith("20% of the profiled time on the CPU in Cast x1")
    # A Memcpy (placed on the CUDA provider) that moves a per-token tensor to the host.
    moved = refusal(gpu + [node("MemcpyToHost", CUDA, 0.001, "float", 1024)], tokens=16)
    assert moved and "MemcpyToHost x1" in moved


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
