"""Latency of every model x runtime x batch x sequence length on fixed-shape synthetic batches."""

from __future__ import annotations

from typing import Any

from bench.context import Bench, Case
from bench.flops import batch_flops
from bench.inputs import synthetic_batch
from bench.timing import first_call, run_timed


def test_latency(benchmark: Any, bench: Bench, latency_case: Case, request: Any) -> None:
    case = latency_case
    entry, backend = bench.open_case(benchmark, case)
    inputs = synthetic_batch(entry.config, case.batch, case.seq)
    _, first = first_call(lambda: backend(inputs))
    benchmark.extra_info.update(
        kind="latency",
        model=case.model,
        runtime=case.runtime.name,
        batch=case.batch,
        seq=case.seq,
        seq_requested=case.seq_requested,
        flops=batch_flops(entry.config, case.batch, case.seq).total,
        sequences=case.batch,
    )
    run_timed(benchmark, lambda: backend(inputs), first, request.config)
    bench.results.append(benchmark.stats)
