"""How each case is timed: a cold call, fixed warm-up calls, rounds sized from warm calls, then timed rounds.

pytest-benchmark's own calibration loop would call a one-second model hundreds of times; here
the number of rounds follows the user's `--benchmark-max-time` (time budget per case) and
`--benchmark-min-rounds` (a floor), so a tiny model gets hundreds of rounds and a real-size
teacher a handful. Each round is one call (iterations=1), so p95 is a real call's latency.

The rounds are sized from warm calls, never from the cold first one: the first call pays for
allocator growth, thread-pool start-up and (on CUDA) kernel loading and autotuning, and sizing
from it gives a slow-first-call case far too few rounds. A fixed number of warm-up calls runs
before any timed round, on every device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

MAX_ROUNDS = 500  # enough for a stable p95; keeps the JSON small
WARMUP_CALLS = 3  # fixed warm-up after the cold call: CUDA's first calls load and tune kernels
WARMUP_SECONDS = 0.2  # fast cases warm up for about this long besides (allocator, thread pools, caches)
MAX_WARMUP_ROUNDS = 20
P95_MIN_ROUNDS = 20  # below this the 95th percentile is just the slowest call or two: not printed


def plan_rounds(warm_call_s: float, max_time: float, min_rounds: int) -> tuple[int, int]:
    """(extra warm-up rounds, timed rounds) for a call that takes `warm_call_s` once warm."""
    warm_call_s = max(warm_call_s, 1e-6)
    rounds = max(min_rounds, min(MAX_ROUNDS, int(max_time / warm_call_s)))
    # The fixed warm-up calls already ran; fast cases get more (about WARMUP_SECONDS' worth).
    warmup = min(MAX_WARMUP_ROUNDS, int(WARMUP_SECONDS / warm_call_s))
    return warmup, rounds


def first_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call once (untimed by pytest-benchmark) and say how long it took; its result is returned too."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def warm_up(fn: Callable[[], Any], calls: int = WARMUP_CALLS) -> float:
    """Call `fn` a fixed number of times; the fastest of them is what a warm call costs."""
    times = [first_call(fn)[1] for _ in range(max(1, calls))]
    return min(times)


def run_timed(
    benchmark: Any,
    fn: Callable[[], Any],
    first_call_s: float,
    config: Any = None,
    max_time: float | None = None,
) -> None:
    """Time `fn` with pytest-benchmark; `config` (pytest's) supplies the --benchmark-* budget options.

    `first_call_s` (the cold call the caller already made) is recorded, not used for sizing.
    """
    if max_time is None:
        max_time = float(_option(config, "benchmark_max_time", 1.0))
    min_rounds = int(_option(config, "benchmark_min_rounds", 5))
    warm = warm_up(fn)
    warmup, rounds = plan_rounds(warm, max_time, min_rounds)
    benchmark.extra_info.update(
        cold_call_s=first_call_s, warm_call_s=warm, warmup_calls=WARMUP_CALLS, warmup_rounds=warmup
    )
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=warmup, iterations=1)


def _option(config: Any, name: str, default: Any) -> Any:
    if config is None:
        return default
    value = config.getoption(name, default)
    return default if value is None else value
