"""--e2e-forms N: the bench's own F1 is compared with the run's files only over the same forms."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.catalog import Catalog
from bench.report import render
from bench.summary import summarise
from tests.test_bench_catalog import run  # noqa: F401 - the module-scoped run fixture


def _metadata(model: str, runtime: str, f1_measured: float) -> Any:
    info = {"kind": "e2e", "model": model, "runtime": runtime, "batch": 8, "forms": 5, "sequences": 5}
    info.update(flops=1e9, f1_measured=f1_measured)
    return SimpleNamespace(
        group="end-to-end", name=f"{model}-{runtime}", extra_info=info, stats=SimpleNamespace(data=[0.1] * 30)
    )


def _bench(run_dir: Path, measured_forms: int, split_forms: int) -> Any:
    return SimpleNamespace(
        catalog=Catalog(run_dir),
        test_forms=[{}] * measured_forms,
        test_split_size=split_forms,
        peak_memory=lambda pairs: {},
        notes={},
        contention={},
        machine=SimpleNamespace(as_dict=lambda: {}),
        skipped=[],
        reference_is_ours=lambda model: None,
    )


def test_a_subset_is_not_compared_with_the_whole_split(run: Path) -> None:  # noqa: F811
    # The manifest scored every test form (0.4); the bench scored the first 5 of 16 (0.9): not comparable.
    summary = summarise(_bench(run, 5, 16), [_metadata("student", "ort-int8", 0.9)])
    assert "f1_mismatch" not in summary["notes"]
    assert "first 5 of 16 test forms" in summary["notes"]["f1_not_compared"]
    (row,) = summary["rows"]
    assert row["f1"] == 0.4 and row["f1_forms"] == 16 and row["f1_measured_forms"] == 5


def test_the_same_forms_are_compared(run: Path) -> None:  # noqa: F811
    summary = summarise(_bench(run, 16, 16), [_metadata("student", "ort-int8", 0.9)])
    assert "stated 40.0, measured 90.0 (both over 16 test forms)" in summary["notes"]["f1_mismatch"]
    assert "f1_not_compared" not in summary["notes"]


def test_the_report_says_which_forms(run: Path) -> None:  # noqa: F811
    summary = summarise(_bench(run, 5, 16), [_metadata("student", "ort-int8", 0.9)])
    summary["machine"] = {
        "cpu": "c", "physical_cores": 1, "logical_cores": 1, "isa": [], "gpu": "none", "threads": 1,
        "os": "x", "python": "3", "versions": {},
    }  # fmt: skip
    text = render(summary, plot_name=None)
    assert "end to end over the first 5 of 16 test forms" in text
    assert "The F1 column covers 16 test forms" in text and "F1 not cross-checked" in text
