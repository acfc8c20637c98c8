"""How cases are timed (bench/timing.py): warm-up before sizing, enough rounds for a p95."""

from __future__ import annotations

from typing import Any

from bench.report import render
from bench.summary import timing_stats
from bench.timing import run_timed
from tests.test_bench_report import row, summary

P95_MIN_ROUNDS = 20  # the report's floor for printing a p95


class FakeBenchmark:
    """Records what pytest-benchmark's `pedantic` was asked to do."""

    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}
        self.pedantic_args: dict[str, Any] = {}

    def pedantic(self, fn: Any, rounds: int, warmup_rounds: int, iterations: int) -> None:
        self.pedantic_args = {"rounds": rounds, "warmup_rounds": warmup_rounds, "iterations": iterations}


def test_rounds_are_sized_from_warm_calls_not_the_cold_one() -> None:
    calls = []

    def fn() -> None:  # warm calls cost nothing; the cold call (made by the caller) took 2 s
        calls.append(1)

    benchmark = FakeBenchmark()
    run_timed(benchmark, fn, first_call_s=2.0)
    # Sized from the 2 s cold call, a 1 s budget would have given the 5-round floor.
    assert benchmark.pedantic_args["rounds"] >= 100
    assert len(calls) >= 3  # a fixed warm-up ran before any timed round
    assert benchmark.extra_info["cold_call_s"] == 2.0 and benchmark.extra_info["warmup_calls"] == len(calls)


def test_p95_needs_enough_rounds() -> None:
    assert timing_stats([0.1] * 5)["p95_s"] is None and timing_stats([0.1] * 5)["rounds"] == 5
    assert timing_stats([0.1] * P95_MIN_ROUNDS)["p95_s"] == 0.1
    assert timing_stats([0.3, 0.1, 0.2])["min_s"] == 0.1


def test_every_timing_table_has_a_rounds_column_and_hides_a_p95_from_few_rounds() -> None:
    data = summary()
    data["rows"] = [
        row("teacher", "torch-fp32", "PyTorch fp32", 1.0, rounds=5, p95_s=9.0),
        row("student", "ort-int8", "ORT int8", 0.05, rounds=40, p95_s=0.06),
        row(
            "teacher", "torch-fp32", "PyTorch fp32", 20.0, group="end-to-end", forms=10, rounds=3, p95_s=99.0
        ),
    ]
    text = render(data, plot_name=None)
    tables = [block for block in text.split("\n\n") if block.startswith("| model")]
    assert len(tables) == 2 and all("| rounds |" in t.splitlines()[0] for t in tables)
    assert "| teacher | PyTorch fp32 | 1,000 | – | 5 |" in text  # 5 rounds: no p95
    assert "| student | ORT int8 | 50.0 | 60.0 | 40 |" in text
    assert "99" not in text.split("## End to end")[1].split("##")[0]  # 3 rounds end to end: no p95
