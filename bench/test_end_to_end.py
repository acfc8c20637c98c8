"""Forms per second over the whole test split, preprocessing included, through predict_word_logits.

Tokenising, cutting windows, the teacher's image resize, padding, the model and the word merge:
everything a user's call does, with windows batched by length (less padding computed:
bench/test_end_to_end_settings.py measures what that buys). The first pass (untimed) also scores the predictions, so every
variant's F1 is known even where the run's files lack it, and records the batch shapes, so the
pass's FLOPs are counted exactly.
"""

from __future__ import annotations

from typing import Any

from bench.context import Bench, Case, ShapeRecorder
from bench.runtimes import float_precision
from bench.timing import first_call, run_timed
from distill.metrics import score_word_logits
from distill.predict import predict_word_logits

SORTED = True  # windows of several forms batched by length


def test_end_to_end(benchmark: Any, bench: Bench, e2e_case: Case, request: Any) -> None:
    case = e2e_case
    entry, backend = bench.open_case(benchmark, case)
    encoder = bench.encoder(case.model)
    forms = bench.test_forms
    recorder = ShapeRecorder(backend)
    logits, first = first_call(
        lambda: predict_word_logits(encoder, recorder, forms, case.batch, sort_by_length=SORTED)
    )
    scores = score_word_logits([f["ner_tags"] for f in forms], logits, bench.labels)
    flops = recorder.flops(entry.config)
    benchmark.extra_info.update(
        kind="e2e",
        model=case.model,
        runtime=case.runtime.name,
        float_precision=float_precision(backend, case.runtime),  # the limit its non-int8 work is held to
        batch=case.batch,
        forms=len(forms),
        words=sum(len(f["tokens"]) for f in forms),
        sequences=sum(b for b, _ in recorder.shapes),
        flops=flops.total,
        flops_int8=flops.int8_part(bench.quantised_share(case.model, case.runtime)),
        f1_measured=scores["f1"],
        per_type=scores["per_type"],
    )
    run_timed(
        benchmark,
        lambda: predict_word_logits(encoder, backend, forms, case.batch, sort_by_length=SORTED),
        first,
        request.config,
    )
    bench.results.append(benchmark.stats)
