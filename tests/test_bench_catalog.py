"""The bench's view of a run directory (bench/catalog.py), its memory probe and its missing-run message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.catalog import Catalog, discover_models, manifest_variant
from bench.runtimes import BY_NAME
from distill.builders import tiny_student, with_layout
from distill.config import TrainConfig
from distill.schema import FUNSD_LABELS

REPO = Path(__file__).resolve().parents[1]
WORDS = ["date", "name", "total", "amount", "signature", "from", "to", "re", "fax", "page"] * 5


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with a student, a layout student and a manifest, no training (what the bench reads)."""
    run = tmp_path_factory.mktemp("run")
    TrainConfig(data="synthetic", teacher="tiny", student="tiny", max_length=128, stride=32).write(
        run / "config.toml"
    )
    student = tiny_student(WORDS, FUNSD_LABELS)
    student.save(run / "student")
    with_layout(student).save(run / "student-layout")
    (run / "onnx" / "student" / "int8").mkdir(parents=True)
    (run / "onnx" / "student" / "int8" / "model.onnx").write_bytes(b"x" * 10)
    manifest = {
        "models": {
            "student": {
                "pytorch": {"f1": 0.5},
                "variants": {"int8": {"path": "onnx/student/int8/model.onnx", "size_bytes": 10, "f1": 0.4}},
                "not_built": {
                    "openvino-int8": {
                        "error": "openvino_model.xml: OpenVINO could not compile",
                        "attempts": [],
                    }
                },
            }
        }
    }
    (run / "onnx" / "manifest.json").write_text(json.dumps(manifest))
    (run / "metrics.json").write_text(json.dumps({"models": {"student": {"f1": 0.45, "params": 123}}}))
    return run


def test_models_are_discovered_in_order(run: Path) -> None:
    assert list(discover_models(run)) == ["student", "student-layout"]  # onnx/ is not a model
    catalog = Catalog(run)
    assert catalog.models["student-layout"].model_type == "layoutlm"
    assert not catalog.timing_only


def test_a_variant_the_export_could_not_build_says_why(run: Path) -> None:
    catalog = Catalog(run)
    assert catalog.not_built("student", "openvino-int8") == "openvino_model.xml: OpenVINO could not compile"
    assert (
        catalog.not_built("student", "int8") is None
        and catalog.not_built("student-layout", "openvino") is None
    )
    assert catalog.onnx_path("student", "openvino-int8") is None


def test_figures_come_from_the_manifest_then_metrics(run: Path) -> None:
    catalog = Catalog(run)
    torch_fp32, int8, fp32 = BY_NAME["torch-fp32"], BY_NAME["ort-int8"], BY_NAME["ort-fp32"]
    assert catalog.known_f1("student", torch_fp32) == 0.5  # the export's PyTorch score first
    assert catalog.known_f1("student", int8) == 0.4
    assert catalog.known_f1("student", fp32) is None  # not exported: the bench measures it
    assert catalog.known_f1("student-layout", torch_fp32) is None
    assert catalog.onnx_path("student", "int8") == run / "onnx" / "student" / "int8" / "model.onnx"
    assert catalog.onnx_path("student", "fp32") is None
    assert catalog.size_bytes("student", int8) == 10
    assert catalog.params("student") == 123  # metrics.json
    params = catalog.params("student-layout")  # counted from the safetensors header
    assert params is not None and params > 0


def test_manifest_shapes() -> None:
    nested = {"models": {"m": {"variants": {"int8": {"f1": 1.0}}}}}
    flat = {"models": {"m": {"int8": {"f1": 1.0}}}}
    assert manifest_variant(nested, "m", "int8") == manifest_variant(flat, "m", "int8") == {"f1": 1.0}
    assert manifest_variant({}, "m", "int8") == {}


def test_timing_only_flag_is_read_from_metrics(tmp_path: Path, run: Path) -> None:
    (tmp_path / "config.toml").write_text((run / "config.toml").read_text())
    tiny_student(WORDS, FUNSD_LABELS).save(tmp_path / "student")
    (tmp_path / "metrics.json").write_text(json.dumps({"timing_only": True}))
    assert Catalog(tmp_path).timing_only


def test_memory_probe_runs_in_a_child_process(run: Path) -> None:
    from bench.memory import probe

    result = probe(run / "student", "torch-fp32", None, batch=2, seq=16, threads=1, timeout=300)
    assert "error" not in result, result
    assert result["peak_mib"] > 0 and "resident set" in result["what"], (
        "loading and running a model takes memory"
    )


def test_missing_run_gives_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "bench"),
            "--benchmark-only",
            "--run-dir",
            str(tmp_path / "nope"),
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error
    assert "run `python -m distill.train` first" in proc.stderr
