"""The terminal a user sees: library noise filtered (targeted), a summary table at the end."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from distill.builders import tiny_student
from distill.console import TOKENIZER_LOGGER, quiet_library_noise, training_summary
from distill.schema import FUNSD_LABELS
from tests.test_students import WORDS

NOISE = (
    "mtime may not be reliable",
    "FutureWarning",
    "Token indices sequence length is longer than the specified maximum",
)


def test_quickstart_ends_with_the_summary_table_and_none_of_the_noise(quickstart_run: Path) -> None:
    home = quickstart_run.parent.parent
    out, err = (home / "stdout.txt").read_text(), (home / "stderr.txt").read_text()
    for noise in NOISE:
        assert noise not in out + err, noise
    tail = out.strip().splitlines()[-8:]
    assert tail[0].split() == ["model", "entity", "F1", "word", "acc", "train", "time"], tail
    metrics = json.loads((quickstart_run / "metrics.json").read_text())
    for row, (name, record) in zip(tail[2:5], metrics["models"].items(), strict=True):
        assert row.split()[:3] == [name, f"{record['f1']:.3f}", f"{record['word_accuracy']:.3f}"]
        assert row.split()[3] == f"{record['train_seconds']:.1f}"
    assert tail[-3] == f"run:    runs/{quickstart_run.name}"
    assert tail[-2] == f"report: {home / 'reports' / 'training.md'}"
    assert tail[-1].startswith("next:   python -m export.onnx --run-dir")


def test_summary_marks_models_not_trained_in_this_run() -> None:
    metrics = {"models": {"teacher": {"f1": 0.5, "word_accuracy": 0.75}, "student": {"f1": 0.25}}}
    text = training_summary(metrics, Path("runs/x"), Path("reports/training.md"))
    assert "teacher" in text and text.count("–") == 3, text


def test_noise_filters_are_targeted(capfd: object) -> None:
    """The three messages go; a warning asking the user to act, and other tokenizer warnings, stay."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_noise()
        warnings.warn(
            "mtime may not be reliable on this filesystem, falling back to numerical ordering", stacklevel=1
        )
        warnings.warn(
            "The `device` argument is deprecated and will be removed in v5", FutureWarning, stacklevel=1
        )
        warnings.warn("Please upgrade onnxruntime: this model needs opset 21", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["Please upgrade onnxruntime: this model needs opset 21"]

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(TOKENIZER_LOGGER)
    logger.addHandler(handler)
    try:
        tokenizer = tiny_student(WORDS, FUNSD_LABELS).tokenizer
        tokenizer.model_max_length = 8
        tokenizer(WORDS[:40], is_split_into_words=True)  # a whole form: longer than 8 sub-tokens
        logger.warning("Asking to pad but the tokenizer does not have a padding token.")
    finally:
        logger.removeHandler(handler)
    assert seen == ["Asking to pad but the tokenizer does not have a padding token."], seen


def test_bench_ends_by_saying_where_the_report_went(quickstart_run: Path, tmp_path: Path) -> None:
    """One PyTorch case is enough: the line must come last, after pytest-benchmark's own tables."""
    from tests.conftest import REPO, run_cli

    args = ["-m", "pytest", str(REPO / "bench"), "--benchmark-only", "--run-dir", str(quickstart_run)]
    args += ["--report-dir", "rep", "--no-memory", "--threads", "1", "-p", "no:cacheprovider"]
    args += ["-k", "test_latency and student-torch-fp32-b1-s128", "--benchmark-min-rounds", "1"]
    out = run_cli([*args, "--benchmark-max-time", "0.05", "--benchmark-warmup", "off"], cwd=tmp_path).stdout
    assert (tmp_path / "rep" / "benchmark.md").is_file()
    lines = out.strip().splitlines()
    assert lines[-2] == "benchmark report: rep/benchmark.md (with benchmark.png and benchmark.json beside it)"
    assert out.index("benchmark report:") > out.index("Legend:"), "below the benchmark tables"
