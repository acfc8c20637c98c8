#!/usr/bin/env bash
# The GPU half of the benchmark on a tiny run, end to end, in one call of a lent GPU machine.
usage() {
  cat <<'EOF'
usage: bench/gpu_check.sh [options] [-- pytest options]

Builds a quickstart run, exports it (fp32, fp32-optimized, fp16), runs the CUDA half of the bench
(`pytest bench --benchmark-only -k cuda`: the CUDA GEMM limits, the latency matrix and end-to-end
cases of every CUDA row, their device memory) and prints a verdict (bench/gpu_summary.py).

  --wheels DIR        first install the wheels in DIR (bench/device/README.md) into --target, put it
                      on PYTHONPATH: for a machine whose python3 lacks the project's packages
  --target DIR        where --wheels installs (default: $TMPDIR or /tmp, docdistill-site)
  --run-dir DIR       bench an exported run instead: no training, no export
  --export            with --run-dir: export a copy of that run first (the export's CUDA path runs)
  --out DIR           where benchmark.md / .json / .png, export.md, gpu-check.txt and logs.tar.gz go
                      (default: $OUT when set, as on the device machine, else a new temporary folder)
  --budget S          seconds for the whole check (default 480): cases that would start too late to
                      fit skip with that reason (a failure on a GPU), the report keeps what ran
  --max-time S        --benchmark-max-time per case (default 0.3)
  --memory-timeout S  seconds one memory probe's child may take (default 60)
  --strict            no case may skip, ONNX Runtime CUDA rows included (CI on the CUDA stand-in)
  -h, --help          this text
  -- ...              passed to pytest last (a -k there replaces the default -k cuda)

Python: $PYTHON, else python3. GPU or not is decided by PyTorch alone; ONNX Runtime's CUDA
provider is checked separately (a one-node session) and its rows skip with its reason.

Exit status: 0 the check did what this machine allows (a GPU: every PyTorch CUDA row and CUDA limit
ran; no GPU at all: every CUDA case skipped with its reason); 1 a step or a case failed, or rows that
must run were skipped; 2 bad usage; 3 nvidia-smi lists a GPU but PyTorch cannot use it.

DOCDISTILL_CUDA_STANDIN=1 runs it on CI's CUDA stand-in (tests/cuda_standin): every CUDA branch
executes on the CPU (ONNX Runtime's where onnxruntime has a CUDA provider), and no figure is a GPU
figure; CI adds --strict.
EOF
}
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
run_dir="" wheels="" target="${TMPDIR:-/tmp}/docdistill-site" out="${OUT:-}" export_run=0 strict=()
budget=480 max_time=0.3 memory_timeout=60
memory_phase=120 # seconds kept for the memory probes after the last case (a child per CUDA row, ~10 s each)
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --run-dir) run_dir=$(cd "${2:?--run-dir needs a directory}" && pwd) || exit 2; shift 2 ;;
    --wheels) wheels=$(cd "${2:?--wheels needs a directory}" && pwd) || exit 2; shift 2 ;;
    --target) target=${2:?--target needs a directory}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --export) export_run=1; shift ;;
    --strict) strict=(--strict); shift ;;
    --budget) budget=${2:?}; shift 2 ;;
    --max-time) max_time=${2:?}; shift 2 ;;
    --memory-timeout) memory_timeout=${2:?}; shift 2 ;;
    --) shift; pytest_args=("$@"); break ;;
    *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$export_run" = 1 ] && [ -z "$run_dir" ]; then echo "gpu_check: --export needs --run-dir" >&2; exit 2; fi

started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/docdistill-gpu-check.XXXXXX")
logs="$work/logs"
out=${out:-$work/out}
mkdir -p "$logs" "$out" "$work/reports"
out=$(cd "$out" && pwd)
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
elapsed() { echo $(($(date +%s) - started)); }
say() { echo "gpu_check [$(elapsed) s]: $*"; }

# Whatever happens, what came out goes to $out: at most 8 files come back from a device call.
bundle() {
  for f in benchmark.md benchmark.json benchmark.png export.md; do
    [ -f "$work/reports/$f" ] && cp "$work/reports/$f" "$out/$f"
  done
  [ -f "$work/reports/training.md" ] && cp "$work/reports/training.md" "$logs/training.md"
  tar -czf "$out/logs.tar.gz" -C "$logs" . 2>/dev/null
  echo "gpu_check: files in $out: $(cd "$out" && ls | tr '\n' ' ')"
  case "$out" in "$work"/*) ;; *) rm -rf "$work" ;; esac  # all that is kept is in $out
}
trap bundle EXIT
fail() {  # message, log file: print the log's tail and stop
  say "FAILED: $1"
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -40 "$2"
  exit 1
}

if [ -n "$wheels" ]; then
  say "installing $(ls "$wheels"/*.whl | wc -l) wheels from $wheels into $target"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$target" \
    "$wheels"/*.whl > "$logs/install.log" 2>&1 || fail "pip install of the carried wheels" "$logs/install.log"
  # The carried versions must shadow the machine's own (its transformers 5 and hub 1.x break the pins).
  export PYTHONPATH="$target:$PYTHONPATH"
fi
if [ "${DOCDISTILL_CUDA_STANDIN:-}" = 1 ]; then  # after the install: it imports the project in every process
  export PYTHONPATH="$root/tests/cuda_standin/site:$PYTHONPATH"
  say "CUDA stand-in active (tests/cuda_standin): CUDA code runs on the CPU; no figure is a GPU figure"
fi
# One Python process: the project's imports, the versions, and what PyTorch and onnxruntime say of CUDA.
"$py" - "$work" > "$logs/versions.log" 2>&1 <<'PY' || fail "the project's imports" "$logs/versions.log"
import importlib.metadata as metadata
import sys
from pathlib import Path

from bench.runtimes import cuda_reason, ort_cuda_reason  # imports what the bench needs (datasets, optimum...)

names = ("torch", "transformers", "tokenizers", "huggingface-hub", "datasets", "optimum", "optimum-onnx",
         "onnx", "onnxruntime", "onnxruntime-gpu", "seqeval", "tomli-w", "pytest-benchmark", "numpy")
found = []
for name in names:
    try:
        found.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
print(f"python {sys.version.split()[0]} ({sys.executable}): " + ", ".join(found))
work = Path(sys.argv[1])
(work / "torch-reason").write_text(cuda_reason() or "")
(work / "ort-reason").write_text(ort_cuda_reason() or "")
from distill.machine import gpu_name

(work / "gpu-name").write_text(gpu_name())
PY
say "$(cat "$logs/versions.log")"

# GPU or dry run: PyTorch alone decides; nvidia-smi only says whether a GPU it cannot use is there.
torch_reason=$(cat "$work/torch-reason")
ort_reason=$(cat "$work/ort-reason")
if [ -n "$wheels" ] && [[ "$ort_reason" == *"has no CUDAExecutionProvider"* ]] && ! ls "$wheels" | grep -q onnxruntime_gpu; then
  ort_reason+="; onnxruntime-gpu is not among the carried wheels: its wheel (~256 MB) is over the 64 MiB a device call carries"
fi
gpus=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)
if [ -n "$torch_reason" ]; then
  if [ "${gpus:-0}" -gt 0 ]; then
    say "FAILED: nvidia-smi lists a GPU ($(nvidia-smi -L | head -1)) but the CUDA rows cannot run: $torch_reason"
    exit 3
  fi
  mode=dry
  say "no GPU here ($torch_reason): a dry run, every CUDA case is collected and skips with its reason"
elif [ "${DOCDISTILL_CUDA_STANDIN:-}" = 1 ]; then
  mode=standin
else
  mode=gpu
  say "GPU: $(cat "$work/gpu-name")"
fi
say "ONNX Runtime CUDA: ${ort_reason:-usable}${ort_reason:+ (its rows skip with this reason)}"

if [ -z "$run_dir" ] || [ "$export_run" = 1 ]; then
  if [ -z "$run_dir" ]; then
    say "training a quickstart run"
    # Training is not part of the GPU half: on the stand-in it runs on the plain CPU.
    (cd "$work" && DOCDISTILL_CUDA_STANDIN=0 "$py" -m distill.train --preset quickstart \
      --report-dir "$work/reports" > "$logs/train.log" 2>&1) || fail "training" "$logs/train.log"
    run_dir="$work/runs/latest"
  else
    mkdir -p "$work/runs" && cp -rL "$run_dir" "$work/runs/copy" && run_dir="$work/runs/copy"
    rm -rf "$run_dir/onnx"
  fi
  say "exporting fp32, fp32-optimized, fp16 (int8 is a CPU variant)"
  "$py" -m export.onnx --run-dir "$run_dir" --report-dir "$work/reports" --variants fp32,fp32-optimized,fp16 \
    > "$logs/export.log" 2>&1 || fail "the export" "$logs/export.log"
  grep -h "fp16:" "$work/reports/export.md" | sed 's/^- /  export /' || true
fi

memory=()
if [ "$mode" = dry ]; then memory=(--no-memory); fi # nothing to measure: keep the dry run short
# The budget: no case starts after $stop s of the bench and no memory probe after $memory_stop (they
# run last, one child each, at most --memory-timeout); pytest is interrupted at $hard as a last resort.
hard=$((budget - $(elapsed) - 20))
if [ "$mode" = dry ]; then memory_stop=$hard stop=$((hard - 20)); else
  memory_stop=$((hard - memory_timeout - 10)) stop=$((hard - memory_timeout - 10 - memory_phase)); fi
[ "$stop" -gt 30 ] || fail "no time left for the bench within --budget $budget s"
say "benching the CUDA cases (cases start within $stop s, memory probes within $memory_stop s)"
(cd "$root" && timeout --signal=INT --kill-after=30 "$hard" "$py" -m pytest bench --benchmark-only -q -rs \
  -p no:cacheprovider -k cuda --run-dir "$run_dir" --report-dir "$work/reports" \
  --benchmark-max-time "$max_time" --memory-timeout "$memory_timeout" --junitxml "$logs/junit.xml" \
  --stop-after "$stop" --memory-stop-after "$memory_stop" \
  ${memory[@]+"${memory[@]}"} ${pytest_args[@]+"${pytest_args[@]}"}) > "$logs/bench.log" 2>&1
bench_rc=$?
[ "$bench_rc" = 124 ] && say "the bench outran the budget and was interrupted (no report if it was writing one)"
tail -1 "$logs/bench.log"

"$py" -m bench.gpu_summary --mode "$mode" --junit "$logs/junit.xml" --report "$work/reports/benchmark.json" \
  --run-dir "$run_dir" --ort-reason "$ort_reason" ${memory[@]+--no-memory} ${strict[@]+"${strict[@]}"} \
  | tee "$out/gpu-check.txt"
verdict=${PIPESTATUS[0]}
if [ "$verdict" != 0 ]; then
  grep -E "^(FAILED|ERROR)|Error|Traceback" "$logs/bench.log" | head -20
  say "FAILED (see logs.tar.gz: bench.log)"
  exit 1
fi
say "done"
