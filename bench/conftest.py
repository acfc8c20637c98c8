"""pytest-benchmark suite over one run directory: `pytest bench --benchmark-only [--run-dir DIR]`.

Options (besides pytest-benchmark's own --benchmark-*):
  --run-dir DIR      the run to benchmark (default runs/latest)
  --report-dir DIR   where benchmark.md / .png / .json go (default reports)
  --threads N        CPU threads for PyTorch and ONNX Runtime (default: one per physical core)
  --no-memory        skip the peak-memory probes (one child process per model and runtime)
  --memory-timeout S give up on one memory probe's child after S seconds (default 300)
  --stop-after S     start no case S seconds after the session began (skipped with that reason)
  --memory-stop-after S  start no memory probe S seconds after the session began (a time budget)
  --e2e-forms N      end-to-end cases over the first N test forms only (default: the whole split)

Every case stores its figures in pytest-benchmark's extra_info; at the end of the session the
report is drawn from them (bench/summary.py, bench/report.py).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest

from bench import memory
from bench.context import Bench, Case
from bench.machine import default_threads
from bench.report import JSON, PLOT, write_report
from bench.summary import summarise
from distill.errors import DistillError
from distill.run_dir import resolve_run_dir

BENCH = pytest.StashKey[Bench]()
REPORT = pytest.StashKey[Path]()  # benchmark.md, once written


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("docdistill", "docdistill benchmark")
    group.addoption("--run-dir", default=None, help="run directory to benchmark (default: runs/latest)")
    group.addoption(
        "--report-dir", default="reports", help="where benchmark.md, .png and .json go (default: reports)"
    )
    group.addoption(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for PyTorch and ONNX Runtime (default: physical cores)",
    )
    group.addoption(
        "--e2e-forms",
        type=int,
        default=None,
        help="end-to-end cases over the first N test forms only (default: the whole test split)",
    )
    group.addoption(
        "--no-memory",
        action="store_true",
        help="skip the peak-memory probes (a child process per model and runtime)",
    )
    group.addoption(
        "--memory-timeout",
        type=float,
        default=None,
        help="seconds one memory probe's child may take before it is stopped (default: 300)",
    )
    group.addoption(
        "--stop-after",
        type=float,
        default=None,
        help="start no case this many seconds after the session began: a time budget (default: none)",
    )
    group.addoption(
        "--memory-stop-after",
        type=float,
        default=None,
        help="start no memory probe this many seconds after the session began (default: none)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help or config.option.version:
        return
    try:
        run = resolve_run_dir(config.getoption("run_dir"))
        threads = config.getoption("threads") or default_threads()
        import torch

        torch.set_num_threads(threads)  # fixed before any model runs; ONNX Runtime gets it per session
        work_dir = Path(tempfile.mkdtemp(prefix="docdistill-bench-"))
        config.stash[BENCH] = Bench(
            run,
            threads,
            work_dir,
            memory_probes=not config.getoption("no_memory"),
            e2e_forms=config.getoption("e2e_forms"),
            memory_timeout=config.getoption("memory_timeout") or memory.TIMEOUT_S,
            stop_after=config.getoption("stop_after"),
            memory_stop_after=config.getoption("memory_stop_after"),
        )
    except DistillError as err:
        raise pytest.UsageError(f"{err}") from err


def pytest_collection_finish(session: pytest.Session) -> None:
    """Warn up front when an int8 variant was exported on another CPU class (the report says it too)."""
    bench = session.config.stash.get(BENCH, None)
    if bench is None:
        return
    from bench.summary import isa_warnings
    from export.isa import this_cpu

    for line in isa_warnings({m: bench.catalog.int8_isa(m) for m in bench.catalog.models}, this_cpu()):
        warnings.warn(line, stacklevel=1)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A time budget (--stop-after): cases not started in time skip, and the report keeps what ran."""
    bench = item.config.stash.get(BENCH, None)
    if bench is not None and bench.past(bench.stop_after):
        pytest.skip(f"not started: past --stop-after {bench.stop_after:.0f} s (the session's time budget)")


def pytest_unconfigure(config: pytest.Config) -> None:
    bench = config.stash.get(BENCH, None)
    if bench is not None:
        shutil.rmtree(bench.work_dir, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    bench = config.stash.get(BENCH, None)
    if bench is None:
        return []
    machine = bench.machine
    note = f" ({bench.catalog.timing_only and 'timing only, F1 not meaningful' or 'trained'})"
    return [
        f"docdistill run: {bench.run}{note}; models: {', '.join(bench.catalog.models)}",
        f"threads: {bench.threads} (PyTorch intra-op {_torch_threads()}, ONNX Runtime intra-op {bench.threads}); "
        f"CPU: {machine.cpu}, {machine.physical_cores} cores, ISA {' '.join(machine.isa)}; GPU: {machine.gpu}",
    ]


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    bench = metafunc.config.stash.get(BENCH, None)
    if bench is None:
        return
    for name, cases in (("latency_case", bench.latency_cases), ("e2e_case", bench.e2e_cases)):
        if name in metafunc.fixturenames:
            found: list[Case] = cases()
            metafunc.parametrize(name, found, ids=[c.id for c in found])
    if "limit_kernel" in metafunc.fixturenames:
        probes = bench.limit_kernels()
        ids = [f"{k.name.replace(' ', '-')}-{k.shape_text}" for k in probes]
        metafunc.parametrize("limit_kernel", probes, ids=ids)


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> Bench:
    return request.config.stash[BENCH]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the report from every case that ran (pytest-benchmark has computed its statistics by now)."""
    config = session.config
    bench = config.stash.get(BENCH, None)
    if bench is None or not [m for m in bench.results if m]:
        return
    bench.finish()
    summary = summarise(bench, bench.results)
    benchmark_json = _pytest_benchmark_json(config, bench.results)
    config.stash[REPORT] = write_report(Path(config.getoption("report_dir")), summary, benchmark_json)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Where the report went, as the last section: after pytest-benchmark's own tables, not above them."""
    path = config.stash.get(REPORT, None)
    if path is not None:
        terminalreporter.section("docdistill")
        terminalreporter.write_line(f"benchmark report: {path} (with {PLOT} and {JSON} beside it)")


def _pytest_benchmark_json(config: pytest.Config, metadatas: list[Any]) -> dict[str, Any]:
    """pytest-benchmark's own JSON (its hooks, its format) for the cases of this session."""
    hook = config.hook
    machine_info = hook.pytest_benchmark_generate_machine_info(config=config)
    hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
    commit_info = hook.pytest_benchmark_generate_commit_info(config=config)
    output = hook.pytest_benchmark_generate_json(
        config=config,
        benchmarks=[m for m in metadatas if m],
        include_data=True,
        machine_info=machine_info,
        commit_info=commit_info,
    )
    hook.pytest_benchmark_update_json(config=config, benchmarks=metadatas, output_json=output)
    return output
