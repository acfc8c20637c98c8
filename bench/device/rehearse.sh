#!/usr/bin/env bash
# Rehearse the lent GPU machine's call on a machine without one: the device command, exactly, run by a
# python3 that is not this project's environment but a venv holding what the machine's image holds.
#
#   bench/device/rehearse.sh [-- gpu_check options]       # a dry run: every CUDA case skips with its reason
#   REHEARSAL_STANDIN=1 bench/device/rehearse.sh          # the GPU branch, on the CUDA stand-in
#
# In $REHEARSAL_DIR (default $TMPDIR or /tmp, docdistill-rehearsal): image/ a venv from
# $REHEARSAL_PYTHON (default python3) with torch ($REHEARSAL_TORCH, default torch==2.13.0: the CPU
# build, where pip is set up so) and the image's versions of transformers, hub, tokenizers,
# onnxruntime (CPU) ... (the device tool's KINDS.md); repo/ the files a device call sends (tracked and
# untracked-not-ignored) with the wheels fetched for that Python in repo/.whl; OUT/ what comes back.
# Then, in repo/, with a bare environment: OUT=... bash bench/gpu_check.sh --wheels .whl
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${REHEARSAL_DIR:-${TMPDIR:-/tmp}/docdistill-rehearsal}
python=${REHEARSAL_PYTHON:-python3}
image_packages=(
  "transformers==5.17.0" "huggingface-hub==1.33.0" "tokenizers==0.23.2" "onnxruntime==1.30.0" "onnx==1.23.1"
  "accelerate==1.15.0" "safetensors==0.8.0" numpy pytest pytest-benchmark pillow matplotlib psutil py-cpuinfo
  tqdm scikit-learn pandas pyarrow requests httpx xxhash pyyaml regex
)
[ "${1:-}" = "--" ] && shift
mkdir -p "$dir"
if [ ! -x "$dir/image/bin/python3" ]; then
  "$python" -m venv "$dir/image"
  "$dir/image/bin/python3" -m pip install -q "${REHEARSAL_TORCH:-torch==2.13.0}"
  "$dir/image/bin/python3" -m pip install -q "${image_packages[@]}"
fi
version=$("$dir/image/bin/python3" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
rm -rf "$dir/repo" "$dir/OUT" && mkdir -p "$dir/repo" "$dir/OUT"
(cd "$root" && { git ls-files; git ls-files --others --exclude-standard; } | sort -u | tar -cf - -T -) \
  | tar -xf - -C "$dir/repo"
"$root/bench/device/fetch_wheels.sh" --python-version "$version" --dest "$dir/repo/.whl" | tail -1
echo "rehearse: python3 is $dir/image/bin/python3 (Python $version), OUT=$dir/OUT"
cd "$dir/repo"
env -i HOME="$HOME" PATH="$dir/image/bin:/usr/local/bin:/usr/bin:/bin" TMPDIR="${TMPDIR:-/tmp}" OUT="$dir/OUT" \
  ${REHEARSAL_STANDIN:+DOCDISTILL_CUDA_STANDIN=1} bash bench/gpu_check.sh --wheels .whl "$@"
