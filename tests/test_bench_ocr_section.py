"""benchmark.md's OCR section from hand-made rows: speed-ups with and without OCR, shares, the headline."""

from __future__ import annotations

from bench.ocr_section import section


def _ocr(model: str, runtime: str, label: str, p50: float, ocr_share: float) -> dict:
    return {
        "kind": "ocr-e2e",
        "model": model,
        "runtime": runtime,
        "runtime_label": label,
        "pages": 5,
        "rounds": 5,
        "p50_s": p50,
        "ocr_share": ocr_share,
        "model_share": 1 - ocr_share - 0.01,
        "entities": 50,
        "word_boxes": False,
        "tesseract": "5.3.0",
    }


def _e2e(model: str, runtime: str, p50: float) -> dict:
    return {"kind": "e2e", "model": model, "runtime": runtime, "forms": 50, "p50_s": p50}


def test_the_section_gives_speed_ups_with_and_without_ocr() -> None:
    ocr = [
        _ocr("teacher", "torch-fp32", "PyTorch fp32", 10.0, 0.5),
        _ocr("student", "torch-fp32", "PyTorch fp32", 6.0, 0.8),
        _ocr("student", "ort-int8", "ORT int8", 5.0, 0.95),
    ]
    model_rows = [_e2e("teacher", "torch-fp32", 25.0), _e2e("student", "ort-int8", 1.0)]
    text = "\n".join(section(ocr, model_rows))
    # Per page: teacher 2.0 s, student int8 1.0 s with OCR; without OCR 0.5 s against 0.02 s.
    assert (
        "student (ORT int8) labels 1.00 pages/s against the teacher's 0.50 (PyTorch fp32): ×2.00 (×25.00 without OCR)"
        in text
    )
    assert "removes 50% of a page's cost, and OCR takes 95% of what is left" in text
    assert "| student | ORT int8 | 5 | 5 | 1.00 s | 1.00 | 95% | 4% | 2.00× | 25.00× | 10.0 |" in text
    assert (
        "| student | PyTorch fp32 | 5 | 5 | 1.20 s | 0.83 | 80% | 19% | 1.67× | – | 10.0 |" in text
    )  # no e2e row
    assert "segment boxes as the run trained" in text


def test_no_ocr_rows_no_section() -> None:
    assert section([], []) == []


def test_the_ocr_bench_times_each_recommended_variant_in_its_runtime() -> None:
    """Issue 30, defect 5: the rows were named `ort-{variant}`, so `openvino-int8` matched nothing and
    only PyTorch fp32 was timed; every CPU variant the export can recommend must get its runtime."""
    from types import SimpleNamespace

    from bench.runtimes import BY_NAME, VARIANT_RUNTIME
    from bench.test_ocr_end_to_end import ocr_runtimes
    from export.recommend import CPU_ORDER

    for variant in CPU_ORDER:
        manifest = {"models": {"student": {"recommended_cpu": variant}}}
        bench = SimpleNamespace(catalog=SimpleNamespace(manifest=manifest))
        names = [r.name for r in ocr_runtimes(bench, "student")]  # type: ignore[arg-type]
        assert names == ["torch-fp32", VARIANT_RUNTIME[variant]] and names[1] in BY_NAME, variant
    nothing = SimpleNamespace(catalog=SimpleNamespace(manifest={"models": {"student": {}}}))
    assert [r.name for r in ocr_runtimes(nothing, "student")] == ["torch-fp32"]  # type: ignore[arg-type]
