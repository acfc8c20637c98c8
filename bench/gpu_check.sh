#!/usr/bin/env bash
# The GPU half of the benchmark on a tiny run, end to end, in a few minutes:
#
#   bench/gpu_check.sh                  # builds a quickstart run, exports it, benches the CUDA rows
#   bench/gpu_check.sh --run-dir DIR    # an existing (exported) run instead: no training, no export
#
# On a machine with a CUDA device (torch.cuda + onnxruntime-gpu's CUDAExecutionProvider) it times
# the CUDA limit probes, the latency matrix and end-to-end cases of every CUDA row (PyTorch fp32 /
# fp16 / bf16, ORT fp32 / fp16 through I/O binding), measures their device memory, and prints a
# summary. Without one it does a CPU-only dry run: the same selection is collected and every GPU
# case skips with its reason (CI runs this), so the script and the GPU code paths cannot rot.
# Budget: under 8 minutes on a GPU machine (quickstart: ~20 s training, ~1 min export).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
run_dir=""
if [ "${1:-}" = "--run-dir" ]; then run_dir=$(cd "$2" && pwd); fi
work=$(mktemp -d "${TMPDIR:-/tmp}/docdistill-gpu-check.XXXXXX")
started=$(date +%s)

reason=$(cd "$root" && python -c "from bench.runtimes import ort_cuda_reason; print(ort_cuda_reason() or '')")
if [ -n "$reason" ]; then
  echo "gpu_check: no GPU here ($reason): CPU-only dry run, the GPU parts are skipped with that reason"
fi

if [ -z "$run_dir" ]; then
  (cd "$work" && python -m distill.train --preset quickstart --report-dir "$work/reports" > train.log 2>&1) \
    || { tail -30 "$work/train.log"; exit 1; }
  run_dir="$work/runs/latest"
  # int8 is a CPU variant: the GPU half needs the fp32 graph (CUDA fp32 rows) and fp16.
  python -m export.onnx --run-dir "$run_dir" --report-dir "$work/reports" --variants fp32,fp32-optimized,fp16 \
    > "$work/export.log" 2>&1 || { tail -30 "$work/export.log"; exit 1; }
  grep -h "fp16:" "$work/reports/export.md" | sed 's/^- /export: /' || true
fi

memory=()
if [ -n "$reason" ]; then memory=(--no-memory); fi  # nothing to measure: keep the dry run short
(cd "$root" && python -m pytest bench --benchmark-only -q -rs -p no:cacheprovider -k cuda \
  --run-dir "$run_dir" --report-dir "$work/reports" --benchmark-max-time 0.5 \
  --benchmark-json "$work/gpu-bench.json" "${memory[@]}") > "$work/bench.log" 2>&1 \
  || { tail -40 "$work/bench.log"; exit 1; }

echo "gpu_check: $(tail -1 "$work/bench.log" | sed 's/=//g') in $(($(date +%s) - started)) s; files in $work"
python - "$work" "$reason" <<'PY'
import json, re, sys
from pathlib import Path

work, reason = Path(sys.argv[1]), sys.argv[2]
skips = sorted({re.sub(r"^SKIPPED \[\d+\] [^:]+:\d+: ", "", l) for l in (work / "bench.log").read_text().splitlines() if l.startswith("SKIPPED")})
for line in skips:
    print(f"  skipped: {line}")
report = work / "reports" / "benchmark.json"
if not report.is_file():
    sys.exit(0 if reason else "gpu_check: a GPU is present but no benchmark report was written")
summary = json.loads(report.read_text())["docdistill"]
for precision, rate in summary["limits"].items():
    print(f"  limit {precision}: {rate / 1e12:.1f} T(FL)OP/s")
for row in summary["rows"]:
    if "cuda" not in row["runtime"]:
        continue
    memory = f"{row['memory_mib']:.0f} MiB" if row.get("memory_mib") is not None else row.get("memory_error") or "-"
    print(f"  {row['group']:<26} {row['model']:<17} {row['runtime_label']:<20} p50 {row['p50_s'] * 1e3:8.2f} ms  rounds {row['rounds']:>3}  memory {memory}")
PY
