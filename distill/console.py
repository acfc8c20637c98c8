"""What a user sees in the terminal: library noise they cannot act on filtered out, a summary at the end.

Filters are targeted (one message each), never a blanket silence: a warning that asks the user to
do something still shows.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

# (message start, category): each one harmless and about code the user does not own.
NOISE_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # transformers' checkpoint rotation when two checkpoints land within a second (small models):
    # it says so, then falls back to ordering by step number, which is right.
    ("mtime may not be reliable on this filesystem", UserWarning),
    # transformers calling its own deprecated get_extended_attention_mask(device=...) signature.
    ("The `device` argument is deprecated", FutureWarning),
    # optimum's LayoutLMv3 ONNX config importing transformers' deprecated feature-extractor alias.
    ("The class LayoutLMv3FeatureExtractor is deprecated", FutureWarning),
)
# The tokenizer sees a whole form before the window encoder cuts it into windows of --max-length:
# the length it warns about never reaches the model.
TOKENIZER_LOGGER = "transformers.tokenization_utils_base"
TOKENIZER_NOISE = "Token indices sequence length is longer than the specified maximum"


class _DropMessage(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def quiet_library_noise() -> None:
    """Filter the messages above in this process (CLI entry points call it; library use is untouched)."""
    for start, category in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(start), category=category)
    logger = logging.getLogger(TOKENIZER_LOGGER)
    if not any(isinstance(f, _DropMessage) for f in logger.filters):
        logger.addFilter(_DropMessage(TOKENIZER_NOISE))


def _score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "–"


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "–"


def training_summary(metrics: dict[str, Any], run: Path, report: Path) -> str:
    """The end of `python -m distill.train`: each model's scores and training time, and where things went.

    A model without train_seconds (a reused teacher, an ensemble) shows "–": it was not trained here.
    """
    rows = [("model", "entity F1", "word acc", "train time")]
    for name, record in metrics.get("models", {}).items():
        rows.append(
            (
                name,
                _score(record.get("f1")),
                _score(record.get("word_accuracy")),
                _seconds(record.get("train_seconds")),
            )
        )
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            [row[0].ljust(width[0]), *(cell.rjust(w) for cell, w in zip(row[1:], width[1:], strict=True))]
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in width))
    lines += [
        f"run:    {run}",
        f"report: {report}",
        f"next:   python -m export.onnx --run-dir {run}",
    ]
    return "\n".join(lines)
