"""Latency of every model x runtime x batch x sequence length on fixed-shape synthetic batches."""

from __future__ import annotations

from typing import Any

from bench.context import Bench, Case
from bench.flops import batch_flops
from bench.inputs import synthetic_batch
from bench.runtimes import device_call, float_precision
from bench.timing import first_call, run_timed


def test_latency(benchmark: Any, bench: Bench, latency_case: Case, request: Any) -> None:
    case = latency_case
    entry, backend = bench.open_case(benchmark, case)
    inputs = synthetic_batch(entry.config, case.batch, case.seq)
    flops = batch_flops(entry.config, case.batch, case.seq)
    share = bench.quantised_share(case.model, case.runtime)
    call = device_call(backend, inputs)  # CUDA rows: inputs already on the device, the device waited for
    _, first = first_call(call)
    benchmark.extra_info.update(
        kind="latency",
        model=case.model,
        runtime=case.runtime.name,
        float_precision=float_precision(backend, case.runtime),  # the limit its non-int8 work is held to
        batch=case.batch,
        seq=case.seq,
        seq_requested=case.seq_requested,
        flops=flops.total,
        flops_int8=flops.int8_part(share),  # the rest runs in fp32: the row's limit is that mix
        quantised=share.describe(),
        sequences=case.batch,
    )
    run_timed(benchmark, call, first, request.config)
    bench.results.append(benchmark.stats)
