"""This machine's GEMM limit per precision, measured in the same session as the models."""

from __future__ import annotations

from typing import Any

import pytest

from bench.context import Bench
from bench.limits import Kernel, kernels
from bench.runtimes import cuda_reason
from bench.timing import first_call, run_timed


@pytest.mark.parametrize("kernel", kernels(), ids=lambda k: k.name.replace(" ", "-"))
def test_machine_limit(benchmark: Any, bench: Bench, kernel: Kernel, request: Any) -> None:
    benchmark.group = "machine limit"
    reason = cuda_reason() if kernel.needs_cuda else None
    if reason:
        bench.skip_row("machine limit", f"GEMM {kernel.name}", kernel.name, reason)
    run = kernel.build(bench.threads)
    _, first = first_call(run)
    benchmark.extra_info.update(
        kind="limit",
        kernel=kernel.name,
        precision=kernel.precision,
        flops=kernel.flops,
        shape=[kernel.m, kernel.k, kernel.n],
    )
    run_timed(benchmark, run, first, request.config)
    bench.results.append(benchmark.stats)
