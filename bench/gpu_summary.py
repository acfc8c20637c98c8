"""The GPU check's verdict: what ran, what skipped and why, and whether that is what this machine allows.

`bench/gpu_check.sh` ends with it. It reads pytest's JUnit XML (every collected case's outcome,
a skip's reason) and the bench's benchmark.json (figures, memory), prints a summary that ends
the device's reply, and exits non-zero when the run did not do what the machine allows:

- any case failed or errored (a CUDA branch raised), or no CUDA case was collected;
- `gpu` (PyTorch sees a CUDA device): a PyTorch CUDA row or a CUDA limit probe skipped, a CUDA
  row's memory probe failed, or no report was written; ONNX Runtime CUDA rows may skip, with
  onnxruntime's own reason (ort_reason) or the placement check's, and are listed;
- `standin` (CI's CUDA stand-in, tests/cuda_standin): as `gpu`;
- `dry` (no GPU at all): every CUDA case must skip with its reason; one that ran is an error;
- `--strict` (CI on the stand-in): no case may skip at all, ONNX Runtime's included.

    python -m bench.gpu_summary --mode gpu --junit J.xml --report benchmark.json --run-dir RUN [--ort-reason R]
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("gpu", "standin", "dry")


@dataclass(frozen=True)
class Outcome:
    """One collected case as JUnit XML records it."""

    name: str  # test_latency[student-torch-cuda-fp32-b1-s128]
    status: str  # passed | skipped | failed | error
    message: str = ""

    @property
    def case(self) -> str:
        return self.name.partition("[")[2].rstrip("]") or self.name

    @property
    def kind(self) -> str:
        """torch-cuda | ort-cuda | cuda-limit | cpu: which rule applies to it."""
        if "ort-cuda" in self.case:
            return "ort-cuda"
        if "torch-cuda" in self.case:
            return "torch-cuda"
        if self.name.startswith("test_machine_limit") and "cuda" in self.case:
            return "cuda-limit"
        return "cpu"


def read_junit(path: Path) -> list[Outcome]:
    """Every test case of a pytest JUnit XML file, with its outcome and a skip's or failure's message."""
    outcomes = []
    for case in ET.parse(path).getroot().iter("testcase"):
        status, message = "passed", ""
        for child, label in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            found = case.find(child)
            if found is not None:
                status, message = label, (found.get("message") or found.text or "").strip()
                break
        outcomes.append(Outcome(case.get("name", "?"), status, message))
    return outcomes


def verdict(
    outcomes: list[Outcome],
    mode: str,
    report: dict[str, Any] | None,
    ort_reason: str = "",
    memory: bool = True,
    strict: bool = False,
) -> list[str]:
    """The problems that make this run a failure (empty: it did what this machine allows)."""
    problems = []
    cuda = [o for o in outcomes if o.kind != "cpu"]
    broken = [o for o in outcomes if o.status in ("failed", "error")]
    if broken:
        problems += [
            f"{o.status}: {o.name}: {o.message.splitlines()[0] if o.message else ''}" for o in broken
        ]
    if not cuda:
        problems.append("no CUDA case was collected (a -k that selects none?)")
    skipped = [o for o in cuda if o.status == "skipped"]
    if mode == "dry":
        ran = [o.name for o in cuda if o.status == "passed"]
        if ran:
            problems.append(f"a dry run (no CUDA device) ran {len(ran)} CUDA cases, e.g. {ran[0]}")
        return problems
    must_run = skipped if strict else [o for o in skipped if o.kind != "ort-cuda"]
    for reason, count in Counter(o.message for o in must_run).items():
        problems.append(f"{count} CUDA cases skipped where they must run: {reason}")
    if report is None:
        problems.append("no benchmark report was written")
    elif memory:
        for row in report.get("rows", []):
            if "cuda" in row.get("runtime", "") and row.get("memory_error"):
                problems.append(
                    f"memory probe of {row['model']} / {row['runtime_label']}: {row['memory_error']}"
                )
    return sorted(set(problems), key=problems.index)


def summary_lines(
    outcomes: list[Outcome],
    mode: str,
    report: dict[str, Any] | None,
    manifest: dict[str, Any],
    ort_reason: str = "",
) -> list[str]:
    """What ran and what it measured: the lines that end the device's reply."""
    counts = Counter(o.status for o in outcomes if o.kind != "cpu")
    machine = (report or {}).get("machine", {})
    lines = [
        f"gpu_check ({mode}): {sum(counts.values())} CUDA cases collected: "
        + ", ".join(f"{counts[s]} {s}" for s in ("passed", "skipped", "failed", "error") if counts[s])
        + (f"; GPU: {machine.get('gpu')}" if machine else "")
    ]
    lines.append(f"  ONNX Runtime CUDA: {ort_reason or 'usable (one-node CUDA session opened)'}")
    for reason, count in Counter(o.message for o in outcomes if o.status == "skipped").items():
        lines.append(f"  skipped x{count}: {reason}")
    if report:
        for precision, rate in report.get("limits", {}).items():
            if precision.startswith("cuda"):
                lines.append(f"  limit {precision}: {rate / 1e12:.2f} T(FL)OP/s")
        for row in sorted(report.get("rows", []), key=lambda r: (r["group"], r["model"], r["runtime"])):
            if "cuda" not in row["runtime"]:
                continue
            memory = f"{row['memory_mib']:.0f} MiB" if row.get("memory_mib") is not None else "–"
            f1 = f"F1 {row['f1'] * 100:.1f}" if row.get("f1") is not None else "F1 –"
            lines.append(
                f"  {row['group']:<24} {row['model']:<17} {row['runtime_label']:<18} "
                f"p50 {row['p50_s'] * 1e3:9.3f} ms  rounds {row['rounds']:>3}  {f1:<8}  memory {memory}"
            )
    lines += fp16_lines(outcomes, manifest, ort_reason)
    return lines


def fp16_lines(outcomes: list[Outcome], manifest: dict[str, Any], ort_reason: str) -> list[str]:
    """Say plainly what each fp16 figure was scored on."""
    torch_fp16 = [o for o in outcomes if "torch-cuda-fp16" in o.case and o.status == "passed"]
    ort_fp16 = [o for o in outcomes if "ort-cuda-fp16" in o.case and o.status == "passed"]
    lines = []
    if torch_fp16:
        lines.append("  fp16, PyTorch: on the GPU (its F1 is the bench's end-to-end pass on the GPU)")
    scored = sorted(
        {
            str(m.get("variants", {}).get("fp16", {}).get("scored_on"))
            for m in manifest.get("models", {}).values()
        }
        - {"None"}
    )
    where = " and ".join(scored) or "nothing (not exported)"
    if ort_fp16:
        lines.append(
            f"  fp16, ONNX: timed and scored on the GPU by the bench; the export scored it on {where} (export.md)"
        )
    else:
        lines.append(
            "  fp16, ONNX: no ORT CUDA row ran"
            + (f" ({ort_reason})" if ort_reason else "")
            + f"; the fp16 variant's F1 in export.md was scored on {where}"
            + (", by onnxruntime's CPU provider: no GPU accuracy or speed figure" if "CPU" in scored else "")
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--junit", type=Path, required=True)
    parser.add_argument("--report", type=Path, help="benchmark.json (absent when no case ran)")
    parser.add_argument("--run-dir", type=Path, help="the run benchmarked (its export manifest)")
    parser.add_argument(
        "--ort-reason", default="", help="why ONNX Runtime CUDA cannot run here (empty: it can)"
    )
    parser.add_argument("--no-memory", action="store_true", help="the memory probes were off")
    parser.add_argument("--strict", action="store_true", help="no case may skip (CI on the CUDA stand-in)")
    args = parser.parse_args(argv)
    if not args.junit.is_file():
        print(f"gpu_check: pytest wrote no results ({args.junit}): see the bench log")
        return 1
    outcomes = read_junit(args.junit)
    report = None
    if args.report and args.report.is_file():
        report = json.loads(args.report.read_text(encoding="utf-8")).get("docdistill")
    manifest_path = args.run_dir / "onnx" / "manifest.json" if args.run_dir else None
    manifest = json.loads(manifest_path.read_text()) if manifest_path and manifest_path.is_file() else {}
    for line in summary_lines(outcomes, args.mode, report, manifest, args.ort_reason):
        print(line)
    problems = verdict(
        outcomes, args.mode, report, args.ort_reason, memory=not args.no_memory, strict=args.strict
    )
    for problem in problems:
        print(f"gpu_check: FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
