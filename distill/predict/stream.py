"""Pages through OCR and the model as a stream, so memory stays flat over thousands of pages.

Reading (OCR) runs `workers` pages side by side in processes, at most `lookahead` pages ahead of
the model; the model takes `pages_per_step` pages at a time, so windows of several pages share its
batches; a page's image is dropped once it is labelled and its record goes straight to the output.
Nothing grows with the number of pages but the counters.
"""

from __future__ import annotations

import itertools
import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from distill.entities import Entity, decode_entities
from distill.predict.pages import PageInput, PageJob, ReadOptions, read_page
from distill.predict.predictor import Predictor, WordPrediction


@dataclass
class LabelledPage:
    page: PageInput
    words: list[WordPrediction]
    entities: list[Entity]


def _worker_start() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the workers, they must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PageReader:
    """Reads pages in this process (`workers` 1) or in a pool of processes, in input order.

    Start it before the model is loaded: the workers are forked from a process that has not
    started PyTorch's or ONNX Runtime's threads yet.
    """

    def __init__(self, options: ReadOptions, workers: int = 1, lookahead: int | None = None) -> None:
        self.options = options
        self.workers = max(1, workers)
        self.lookahead = lookahead or 2 * self.workers
        self.pool: Any = None
        if self.workers > 1:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.pool = context.Pool(self.workers, initializer=_worker_start)

    def read(self, jobs: Iterable[PageJob]) -> Iterator[PageInput]:
        if self.pool is None:
            for job in jobs:
                yield read_page(job, self.options)
            return
        queue = iter(jobs)
        pending = deque(
            self.pool.apply_async(read_page, (job, self.options))
            for job in itertools.islice(queue, self.lookahead)
        )
        while pending:
            page = pending.popleft().get()
            for job in itertools.islice(queue, 1):
                pending.append(self.pool.apply_async(read_page, (job, self.options)))
            yield page

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


@dataclass
class ModelClock:
    seconds: float = 0.0


def label_pages(
    predictor: Predictor,
    pages: Iterable[PageInput],
    pages_per_step: int = 16,
    clock: ModelClock | None = None,
) -> Iterator[LabelledPage]:
    """Each page with its word labels and entities (empty for a failed page), in input order.

    Entity boxes are drawn around the words' own boxes, whatever boxes the model was given.
    """
    for chunk in batched(pages, max(1, pages_per_step)):
        good: Sequence[PageInput] = [p for p in chunk if p.error is None]
        started = time.perf_counter()
        found = predictor.predict_many({"tokens": p.words, "bboxes": p.boxes, "image": p.image} for p in good)
        if clock is not None:
            clock.seconds += time.perf_counter() - started
        by_page = {id(p): words for p, words in zip(good, found, strict=True)}
        for page in chunk:
            words = by_page.get(id(page), [])
            entities = (
                decode_entities(
                    [w.word for w in words],
                    [w.label for w in words],
                    [w.score for w in words],
                    page.word_boxes,
                )
                if words
                else []
            )
            page.image = None  # labelled: the image is not needed any more
            yield LabelledPage(page, words, entities)
