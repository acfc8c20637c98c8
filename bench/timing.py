"""How each case is timed: one untimed call to size it (and warm up), more warm-up calls, then timed rounds.

pytest-benchmark's own calibration loop would call a one-second model hundreds of times; here
the number of rounds follows the user's `--benchmark-max-time` (time budget per case) and
`--benchmark-min-rounds` (a floor), so a tiny model gets hundreds of rounds and a real-size
teacher a handful. Each round is one call (iterations=1), so p95 is a real call's latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

MAX_ROUNDS = 500  # enough for a stable p95; keeps the JSON small
WARMUP_SECONDS = 0.2  # fast cases warm up for about this long (allocator, thread pools, caches)
MAX_WARMUP_ROUNDS = 20


def plan_rounds(first_call_s: float, max_time: float, min_rounds: int) -> tuple[int, int]:
    """(warm-up rounds, timed rounds) for a call that took `first_call_s` the first time."""
    first_call_s = max(first_call_s, 1e-6)
    rounds = max(min_rounds, min(MAX_ROUNDS, int(max_time / first_call_s)))
    # The sizing call already warmed up once; fast cases get more (about WARMUP_SECONDS' worth).
    warmup = min(MAX_WARMUP_ROUNDS, int(WARMUP_SECONDS / first_call_s))
    return warmup, rounds


def first_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call once (untimed by pytest-benchmark) and say how long it took; its result is returned too."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_timed(benchmark: Any, fn: Callable[[], Any], first_call_s: float, config: Any = None) -> None:
    """Time `fn` with pytest-benchmark; `config` (pytest's) supplies the --benchmark-* budget options."""
    max_time = float(_option(config, "benchmark_max_time", 1.0))
    min_rounds = int(_option(config, "benchmark_min_rounds", 5))
    warmup, rounds = plan_rounds(first_call_s, max_time, min_rounds)
    benchmark.extra_info["warmup_rounds"] = warmup
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=warmup, iterations=1)


def _option(config: Any, name: str, default: Any) -> Any:
    if config is None:
        return default
    value = config.getoption(name, default)
    return default if value is None else value
