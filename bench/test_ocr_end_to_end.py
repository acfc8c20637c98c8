"""Pages per second from the page image to entities, OCR included: what `python -m distill.predict` does.

Each round reads the run's first test pages as image files (FUNSD's scans, or the synthetic pages a
quickstart run renders), runs Tesseract on them, builds the segment (or word) boxes the run was
trained with and labels them through the CLI's own stream (`distill.predict.pages.read_page`,
`distill.predict.stream.label_pages`): the same code, in one process. Cases: the teacher and the
student, each in PyTorch fp32 and in its export's recommended CPU variant. OCR costs every model the
same, so these rows show how much of a page's cost the student still removes once OCR is counted;
each row also records the share of its time OCR took.

Pages: the first OCR_PAGES test pages (`--e2e-forms N` sets N); rounds: `--benchmark-min-rounds`
(default 5) after one untimed cold pass: every round OCRs every page again, so a round costs seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bench.context import Bench
from bench.runtimes import BY_NAME, VARIANT_RUNTIME, Runtime
from distill.predict import Predictor, id2label_list
from distill.predict.pages import PageJob, ReadOptions, read_page
from distill.predict.stream import ModelClock, label_pages

OCR_PAGES = 5
MODELS = ("teacher", "student")
GROUP = "ocr end-to-end"
KIND = "ocr-e2e"


def ocr_runtimes(bench: Bench, model: str) -> list[Runtime]:
    """PyTorch fp32 and the variant the export recommends for a CPU (when there is one)."""
    runtimes = [BY_NAME["torch-fp32"]]
    variant = bench.catalog.manifest.get("models", {}).get(model, {}).get("recommended_cpu")
    # The export's variant names are not the bench's runtime names (openvino-int8 runs as ov-int8).
    name = VARIANT_RUNTIME.get(variant) if variant else None
    if name in BY_NAME and name != "torch-fp32":
        runtimes.append(BY_NAME[name])
    return runtimes


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from bench.conftest import BENCH

    bench = metafunc.config.stash.get(BENCH, None)
    if bench is None or "ocr_case" not in metafunc.fixturenames:
        return
    cases = [(m, r) for m in MODELS if m in bench.catalog.models for r in ocr_runtimes(bench, m)]
    metafunc.parametrize("ocr_case", cases, ids=[f"{m}-{r.name}" for m, r in cases])


def page_files(bench: Bench) -> list[Path]:
    """The first test pages as PNG files in the session's work directory (written once)."""
    folder = bench.work_dir / "ocr-pages"
    if not folder.is_dir():
        folder.mkdir()
        count = min(bench.e2e_forms or OCR_PAGES, len(bench.test_forms))
        for i, form in enumerate(bench.test_forms[:count]):
            if form.get("image") is None:
                pytest.skip("the run's test forms have no page images to OCR")
            form["image"].save(folder / f"{i:03d}-{form['id']}.png")
    return sorted(folder.glob("*.png"))


def test_ocr_end_to_end(benchmark: Any, bench: Bench, ocr_case: tuple[str, Runtime], request: Any) -> None:
    import shutil

    if shutil.which("tesseract") is None:
        bench.skip_row(ocr_case[0], ocr_case[1].label, f"ocr-{ocr_case[0]}", "Tesseract not installed")
    model, runtime = ocr_case
    benchmark.group = GROUP
    try:
        backend = bench.backend(model, runtime)
    except Exception as reason:  # bench.runtimes.Unavailable: the row is skipped with its reason
        bench.skip_row(model, runtime.label, f"ocr-{model}-{runtime.name}", str(reason))
    entry = bench.catalog.models[model]
    encoder = bench.encoder(model)
    predictor = Predictor(encoder, backend, id2label_list(entry.config), batch_size=8)
    options = ReadOptions(
        word_boxes=bench.catalog.config.word_boxes, want_image=encoder.image_processor is not None
    )
    jobs = [PageJob(path, 1, "image") for path in page_files(bench)]
    spent = {"ocr": 0.0, "read": 0.0, "model": 0.0, "wall": 0.0, "calls": 0}
    found = {"words": 0, "entities": 0, "failed": 0}

    def page_to_entities() -> None:
        started = time.perf_counter()
        clock = ModelClock()
        pages = (read_page(job, options) for job in jobs)
        words = entities = failed = 0
        for result in label_pages(predictor, pages, pages_per_step=16, clock=clock):
            spent["ocr"] += result.page.ocr_seconds
            spent["read"] += result.page.read_seconds
            words += len(result.words)
            entities += len(result.entities)
            failed += result.page.error is not None
        spent["model"] += clock.seconds
        spent["wall"] += time.perf_counter() - started
        spent["calls"] += 1
        found.update(words=words, entities=entities, failed=failed)

    page_to_entities()  # cold: loads, warms the model (untimed)
    rounds = int(request.config.getoption("benchmark_min_rounds", 5) or 5)
    benchmark.pedantic(page_to_entities, rounds=rounds, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update(
        kind=KIND,
        model=model,
        runtime=runtime.name,
        runtime_label=runtime.label,
        pages=len(jobs),
        words=found["words"],
        entities=found["entities"],
        failed_pages=found["failed"],
        ocr_share=spent["ocr"] / spent["wall"],
        model_share=spent["model"] / spent["wall"],
        ocr_s_per_page=spent["ocr"] / (spent["calls"] * len(jobs)),
        model_s_per_page=spent["model"] / (spent["calls"] * len(jobs)),
        word_boxes=bench.catalog.config.word_boxes,
        tesseract=_tesseract_version(),
    )
    bench.results.append(benchmark.stats)


def _tesseract_version() -> str:
    from distill.predict.ocr import check_tesseract

    return check_tesseract("eng")
