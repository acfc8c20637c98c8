"""What each end-to-end setting buys, measured interleaved on the student's recommended CPU variant.

Rounds of the whole test split through `predict_word_logits`, each round calling every setting once
in a rotating order (export/timing.py), so a burst of other work hits them all; the report gives
each setting's median as a ratio against the one the bench serves with:

- windows batched by length (SORT_QUEUE_BATCHES batches sorted together) against form order;
- the runtime's threads pinned to the physical cores (the bench's) against the runtime's own default.
"""

from __future__ import annotations

from typing import Any

from bench.context import Bench
from bench.runtimes import Unavailable
from distill.predict import predict_word_logits
from export.timing import interleaved, margin

SERVED = "sorted by length, threads pinned"
ROUNDS = 5


def test_end_to_end_settings(benchmark: Any, bench: Bench) -> None:
    benchmark.group = "end-to-end settings"
    runtime = bench.recommended_runtime("student")
    try:
        if runtime is None:
            raise Unavailable("no student, or no export recommending a CPU variant of it")
        backend = bench.backend("student", runtime)
        default_threads = bench.default_threads_backend("student", runtime)
    except Unavailable as reason:
        bench.skip_row("student", "end-to-end settings", "e2e-settings", str(reason))
    encoder, forms = bench.encoder("student"), bench.test_forms

    def run(served_backend: Any, sort: bool) -> Any:
        return lambda: predict_word_logits(encoder, served_backend, forms, 8, sort_by_length=sort)

    calls = {
        SERVED: run(backend, True),
        "form order": run(backend, False),
        "runtime's default threads": run(default_threads, True),
    }
    found: dict[str, Any] = {}

    def measure() -> None:
        stats, others = interleaved(calls, rounds=ROUNDS, settle=1)
        found.update(stats=stats, others=others, margin=margin(stats, others))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    served = found["stats"][SERVED]["median_ms"]
    benchmark.extra_info.update(
        kind="e2e-settings",
        model="student",
        runtime=runtime.name,
        served=SERVED,
        forms=len(forms),
        margin=found["margin"],
        other_processes_cores=found["others"],
        settings={
            name: {**s, "served_speedup": s["median_ms"] / served} for name, s in found["stats"].items()
        },
    )
    bench.results.append(benchmark.stats)
