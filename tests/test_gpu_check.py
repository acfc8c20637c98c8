"""bench/gpu_check.sh and its verdict (bench/gpu_summary.py), and onnxruntime's CUDA check, without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from bench.gpu_summary import Outcome, read_junit, verdict
from distill.predict.onnx_runtime import _identity_model, cuda_problem, loader_error

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"

TORCH = "test_latency[student-torch-cuda-fp32-b1-s128]"
ORT = "test_end_to_end[teacher-ort-cuda-fp16]"
LIMIT = "test_machine_limit[torch-matmul-cuda-bf16-8192x8192x8192]"
REPORT = {"rows": [{"model": "student", "runtime": "torch-cuda-fp32", "runtime_label": "PyTorch CUDA fp32"}]}


def outcomes(**status: str) -> list[Outcome]:
    names = {"torch": TORCH, "ort": ORT, "limit": LIMIT}
    return [Outcome(names[k], v, "why" if v != "passed" else "") for k, v in status.items()]


def test_a_gpu_run_must_run_every_pytorch_cuda_row_and_limit_but_ort_cuda_may_skip() -> None:
    assert (
        verdict(outcomes(torch="passed", ort="skipped", limit="passed"), "gpu", REPORT, "no provider") == []
    )
    assert verdict(outcomes(torch="skipped", ort="passed", limit="passed"), "gpu", REPORT)
    assert verdict(outcomes(torch="passed", ort="passed", limit="skipped"), "gpu", REPORT)
    assert verdict(outcomes(torch="failed", ort="passed", limit="passed"), "gpu", REPORT)
    assert verdict(outcomes(torch="passed"), "gpu", None) == ["no benchmark report was written"]
    broken = {"rows": [{**REPORT["rows"][0], "memory_error": "timed out after 120 s"}]}
    assert "timed out" in verdict(outcomes(torch="passed"), "gpu", broken)[0]
    assert verdict(outcomes(torch="passed"), "gpu", broken, memory=False) == []


def test_a_strict_run_may_skip_nothing_and_a_dry_run_may_time_nothing() -> None:
    assert (
        verdict(outcomes(torch="passed", ort="passed", limit="passed"), "standin", REPORT, strict=True) == []
    )
    assert verdict(outcomes(torch="passed", ort="skipped"), "standin", REPORT, strict=True)
    assert verdict(outcomes(torch="passed", ort="skipped"), "standin", REPORT) == []
    assert verdict(outcomes(torch="skipped", ort="skipped", limit="skipped"), "dry", None) == []
    assert "ran 1 CUDA cases" in verdict(outcomes(torch="passed", ort="skipped"), "dry", None)[0]
    assert (
        "no CUDA case"
        in verdict([Outcome("test_latency[student-ort-int8-b1-s128]", "passed")], "gpu", REPORT)[0]
    )


def test_junit_outcomes_and_skip_reasons_are_read(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        f'<testcase classname="bench.test_latency" name="{TORCH}" time="1.0"/>'
        f'<testcase classname="bench.test_end_to_end" name="{ORT}" time="0.1">'
        '<skipped type="pytest.skip" message="this onnxruntime (1.30.0) has no CUDAExecutionProvider">'
        "bench/context.py:180: skipped</skipped></testcase>"
        f'<testcase classname="bench.test_machine_limit" name="{LIMIT}"><failure message="RuntimeError: boom">'
        "trace</failure></testcase></testsuite></testsuites>"
    )
    found = read_junit(path)
    assert [(o.kind, o.status) for o in found] == [
        ("torch-cuda", "passed"),
        ("ort-cuda", "skipped"),
        ("cuda-limit", "failed"),
    ]
    assert found[1].message == "this onnxruntime (1.30.0) has no CUDAExecutionProvider"


def test_onnxruntimes_own_loader_error_is_the_reason() -> None:
    log = (
        "\x1b[0;93m2026-12-01 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:856 operator()] No registered "
        "plugin EP device found for 'CUDAExecutionProvider' with device_id=0\x1b[m\n"
        "\x1b[1;31m2026-12-01 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] /src/provider_bridge_ort.cc"
        ":2043 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to "
        "load library /site/onnxruntime/capi/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot "
        "open shared object file: No such file or directory\n\x1b[m\n"
        "[W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 CreateExecutionProviderFactoryInstance] Failed to "
        "create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*. Please install all dependencies\n"
    )
    assert loader_error(log) == (
        "libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared object file: "
        "No such file or directory; it requires cuDNN 9.* and CUDA 13.*"
    )
    assert loader_error("[E:onnxruntime:Default, x.cc:1 f()] CUDA failure 100: no CUDA-capable device") == (
        "CUDA failure 100: no CUDA-capable device"
    )


def test_a_listed_cuda_provider_that_does_not_load_is_not_usable() -> None:
    """onnxruntime-gpu lists CUDAExecutionProvider on this CPU machine; a session cannot use it."""
    problem = cuda_problem()
    if problem is None:  # then a CUDA session must really run on the CUDA provider
        session = ort.InferenceSession(
            _identity_model(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
        )
        assert session.get_providers()[0] == "CUDAExecutionProvider"
        return
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert problem.startswith("onnxruntime's CUDA provider did not load: ")
        assert "logged no reason" not in problem  # its own words are quoted
    else:
        assert "has no CUDAExecutionProvider" in problem


def test_the_script_takes_help_and_refuses_unknown_options(tmp_path: Path) -> None:
    done = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=30)
    assert (
        done.returncode == 0
        and "usage: bench/gpu_check.sh" in done.stdout
        and "gpu_check [" not in done.stdout
    )
    done = subprocess.run([SCRIPT, "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "unknown option --frobnicate" in done.stderr


@pytest.mark.skipif(os.environ.get("DOCDISTILL_CUDA_STANDIN") == "1", reason="the stand-in reports a GPU")
def test_a_gpu_that_pytorch_cannot_use_fails_the_check_with_the_reason(tmp_path: Path) -> None:
    """nvidia-smi lists a GPU (a stand-in script on PATH), PyTorch has none: exit 3, not a dry run."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("PyTorch can use a GPU here")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{fake}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        [SCRIPT, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "nvidia-smi lists a GPU (GPU 0: NVIDIA H200" in done.stdout
    assert ("CPU-only torch build" if torch.version.cuda is None else "sees no CUDA device") in done.stdout
    assert (tmp_path / "out" / "logs.tar.gz").is_file()  # what came out is there for the device's $OUT


def test_a_memory_probe_child_is_given_up_on_at_its_timeout(tmp_path: Path) -> None:
    from bench import memory

    assert memory.TIMEOUT_S <= 300  # a hung CUDA context must not hold the session for long
    found = memory.probe(tmp_path, "torch-cuda-fp32", None, 1, 8, 1, timeout=0.01)
    assert found == {"error": "timed out after 0 s"}


def test_cases_past_the_time_budget_skip_with_that_reason(quickstart_run: Path, tmp_path: Path) -> None:
    """--stop-after: what bench/gpu_check.sh passes so the report is written within its budget."""
    junit = tmp_path / "junit.xml"
    args = [sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q", "-p", "no:cacheprovider"]
    args += ["-k", "student-ort-fp32-b1-s128", "--run-dir", str(quickstart_run), "--no-memory"]
    args += ["--report-dir", str(tmp_path / "reports"), "--junitxml", str(junit), "--stop-after", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:]
    (case,) = read_junit(junit)
    assert case.status == "skipped" and "past --stop-after 0 s" in case.message
