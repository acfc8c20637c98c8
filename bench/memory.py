"""Peak memory of one model in one runtime, measured in a fresh process so cases never pollute each other.

The child imports everything first, notes its resident set (the libraries' share, the same for
every row), loads the model, runs the heaviest batch the bench times (`--batch` x `--seq`)
`--calls` times and reports the peak resident set minus that baseline: what serving this model
in this runtime adds. On CUDA, PyTorch and ONNX Runtime rows are measured the same way: the
device memory the process took from before loading the model to after the calls (both keep
their peak in their caching allocator / arena, so this is their peak reservation); torch's own
peak allocation is reported beside it for PyTorch rows.

    python -m bench.memory --model-dir RUN/student --runtime ort-int8 --onnx RUN/onnx/student/int8/model.onnx
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
TIMEOUT_S = 300.0  # one probe's child: a hung CUDA context must not stall the bench (--memory-timeout)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak() -> bool:
    """Start the peak resident set afresh from now (Linux: write 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """The peak resident set since the last reset (VmHWM), else since the process began (getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def measure(
    model_dir: Path, runtime_name: str, onnx: Path | None, batch: int, seq: int, threads: int, calls: int
) -> dict[str, Any]:
    import torch
    from transformers import AutoConfig

    from bench.inputs import synthetic_batch
    from bench.runtimes import BY_NAME, onnx_backend, openvino_backend, torch_backend
    from distill.models import load_bundle

    runtime = BY_NAME[runtime_name]
    config = AutoConfig.from_pretrained(model_dir)
    inputs = synthetic_batch(config, batch, seq)
    cuda = runtime.is_cuda
    if cuda:
        torch.cuda.init()
        free_before = torch.cuda.mem_get_info()[0]
    baseline = _rss()
    # Importing torch and transformers peaks above where it settles: measure the peak from here on.
    fresh_peak = _reset_peak()
    if runtime.engine == "torch":
        backend = torch_backend(load_bundle(model_dir).model, runtime, threads)
    elif runtime.engine == "openvino":
        if onnx is None:
            raise SystemExit("--onnx (the OpenVINO IR .xml) is needed for an OpenVINO row")
        backend = openvino_backend(onnx, threads)
    else:
        if onnx is None:
            raise SystemExit("--onnx is needed for an ONNX Runtime row")
        backend = onnx_backend(onnx, runtime, threads)
    loaded = _rss()
    for _ in range(calls):
        backend(inputs)
    result: dict[str, Any] = {
        "rss_loaded_mib": (loaded - baseline) / MIB,
        "peak_mib": (_peak_rss() - baseline) / MIB,
        "what": f"peak resident set over the libraries' baseline, batch {batch} x {seq} tokens",
    }
    if not fresh_peak:
        result["what"] += " (peak since process start: may include the imports' own peak)"
    if cuda:
        torch.cuda.synchronize()
        # One measure for both engines: what the device lost, model load and calls included.
        result["peak_mib"] = (free_before - torch.cuda.mem_get_info()[0]) / MIB
        result["what"] = (
            f"device memory taken by the process (torch.cuda.mem_get_info before loading and after the calls), "
            f"batch {batch} x {seq} tokens"
        )
        if runtime.engine == "torch":
            result["torch_allocated_mib"] = torch.cuda.max_memory_allocated() / MIB
    return result


def probe(
    model_dir: Path,
    runtime: str,
    onnx: Path | None,
    batch: int,
    seq: int,
    threads: int,
    calls: int = 1,
    timeout: float = TIMEOUT_S,
) -> dict[str, Any]:
    """Run `measure` in a child Python process; {"error": ...} instead of raising, so one row's failure stays one row's."""
    command = [sys.executable, "-m", "bench.memory", "--model-dir", str(model_dir), "--runtime", runtime]
    command += ["--batch", str(batch), "--seq", str(seq), "--threads", str(threads), "--calls", str(calls)]
    if onnx is not None:
        command += ["--onnx", str(onnx)]
    root = Path(__file__).resolve().parent.parent  # the child imports bench/ and distill/ from this checkout
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {done.returncode}: {tail[0][:300]}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--onnx", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=1)
    args = parser.parse_args(argv)
    print(
        json.dumps(
            measure(args.model_dir, args.runtime, args.onnx, args.batch, args.seq, args.threads, args.calls)
        )
    )


if __name__ == "__main__":
    main()
