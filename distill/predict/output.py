"""One JSON line per page, to a file that appears whole or not at all (or to stdout: line by line, or all at
the end under --strict).

A line: the source file, the page (1-based), the page size in pixels, its words (text, 0..1000 box,
label, score), its entities as `Predictor.predict_form` gives them (label, text, word span, score,
box), and `error`: null, or what went wrong with this page (its words and entities are then empty).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distill import atomic
from distill.predict.stream import LabelledPage


def page_record(result: LabelledPage) -> dict[str, Any]:
    page = result.page
    return {
        "source": str(page.job.source),
        "page": page.job.page,
        "width": page.size[0] if page.size else None,
        "height": page.size[1] if page.size else None,
        "words": [
            {"text": w.word, "box": list(box), "label": w.label, "score": round(w.score, 4)}
            for w, box in zip(result.words, page.word_boxes, strict=False)
        ],
        "entities": [
            {**dataclasses.asdict(e), "box": list(e.box) if e.box else None, "score": round(e.score, 4)}
            for e in result.entities
        ],
        "error": page.error,
    }


@contextlib.contextmanager
def json_lines(path: str | Path | None, hold: bool = False) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A `write(record)` function: into `path` atomically (renamed in when the block ends), else stdout,
    line by line, or with `hold` only once the block ends normally (--strict: all or nothing)."""
    if path is None and hold:
        held: list[str] = []
        yield lambda record: held.append(json.dumps(record, ensure_ascii=False))
        for line in held:
            print(line)
        sys.stdout.flush()
        return
    if path is None:
        yield lambda record: print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    with atomic.text_stream(path) as handle:
        yield lambda record: handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return
