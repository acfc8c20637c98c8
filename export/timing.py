"""Timing candidates against each other: interleaved rounds, with the noise and contention said.

One batch timed ten times per candidate, one candidate after the other, ranks them by whatever
else the machine did meanwhile. Here every round calls each candidate once, in a rotating order,
so a burst of other work hits all of them; the spread of each candidate's rounds and the cores
other processes took are returned beside the medians, so a choice can demand a margin beyond
them (`margin`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from export.contention import CpuShare

ROUNDS = 7
WARMUP = 2
# A candidate must beat the plain recipe by more than this even on an idle machine: the simpler
# recipe is the one a user can reproduce with optimum alone.
LATENCY_TIE = 0.10


def interleaved(
    calls: dict[str, Callable[[], Any]], rounds: int = ROUNDS, warmup: int = WARMUP, settle: int = 0
) -> tuple[dict[str, dict[str, float]], float]:
    """({name: median_ms, min_ms, spread, rounds}, cores' worth of CPU other processes took meanwhile).

    `settle`: untimed calls before each timed one. Candidates from different runtimes need one: a
    runtime's worker threads keep spinning for a while after its call returns (onnxruntime's do by
    default), and would otherwise slow whichever candidate the rotation runs next.
    """
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    share = CpuShare.start()
    for r in range(rounds):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:  # rotate: nobody always runs first (or last)
            for _ in range(settle):
                calls[name]()
            started = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - started) * 1000.0)
    others = share.others_cores()
    stats = {}
    for name, values in times.items():
        data = np.asarray(values)
        median = float(np.median(data))
        q1, q3 = np.percentile(data, [25, 75])
        stats[name] = {
            "median_ms": median,
            "min_ms": float(data.min()),
            "spread": float((q3 - q1) / median) if median else 0.0,  # interquartile range / median
            "rounds": len(values),
        }
    return stats, others


def beyond_noise(fast_ms: float, slow_ms: float, margin: float) -> bool:
    """fast_ms is faster than slow_ms by more than the margin, as a speed ratio: slow/fast > 1 + margin.

    A ratio, not `fast < slow * (1 - margin)`: at a margin of 100 % or more (a busy machine) that
    form rules out every candidate, however fast; this one asks for a bigger speed-up instead."""
    return fast_ms * (1.0 + margin) < slow_ms


def margin(stats: dict[str, dict[str, float]], others_cores: float, cores: int | None = None) -> float:
    """How much faster than the plain recipe another must be to count: the tie, the worst spread,
    and the share of the cores other processes held while timing (their work lands on some rounds)."""
    cores = cores or os.cpu_count() or 1
    spread = max((s["spread"] for s in stats.values()), default=0.0)
    return max(LATENCY_TIE, spread) + others_cores / cores
