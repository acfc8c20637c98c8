"""This machine's GEMM limit per precision, measured in the same session as the models.

Each kernel runs at several shapes, the models' own among them (Bench.limit_kernels); the
summary takes each probe's fastest round and each precision's best probe.
"""

from __future__ import annotations

from typing import Any

from bench.context import Bench
from bench.limits import LIMIT_MAX_TIME, Kernel, bf16_reason
from bench.runtimes import cuda_reason
from bench.timing import first_call, run_timed


def test_machine_limit(benchmark: Any, bench: Bench, limit_kernel: Kernel, request: Any) -> None:
    kernel = limit_kernel
    benchmark.group = "machine limit"
    reason = (
        cuda_reason()
        if kernel.needs_cuda
        else (bf16_reason(kernel.needs_bf16) if kernel.needs_bf16 else None)
    )
    if reason:
        bench.skip_row("machine limit", f"GEMM {kernel.name}", f"{kernel.name} {kernel.shape_text}", reason)
    run = kernel.build(bench.threads)
    _, first = first_call(run)
    benchmark.extra_info.update(
        kind="limit",
        kernel=kernel.name,
        precision=kernel.precision,
        flops=kernel.flops,
        shape=[kernel.m, kernel.k, kernel.n],
    )
    run_timed(benchmark, run, first, request.config, max_time=LIMIT_MAX_TIME)
    bench.results.append(benchmark.stats)
