#!/usr/bin/env bash
# Download the wheels of bench/device/wheels.txt for the lent GPU machine's python3 into a folder
# that git ignores (default .whl/ at the repository root), then check they fit one device call.
#
#   bench/device/fetch_wheels.sh                       # Python 3.12, x86-64 Linux: the lent machine
#   bench/device/fetch_wheels.sh --python-version 3.11 --dest .whl-py311   # e.g. for a rehearsal
#
# pip resolves nothing (--no-deps): wheels.txt names every package the machine lacks.
# seqeval has no wheel on PyPI; its source archive is built here into a pure-Python wheel.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=3.12 dest="$root/.whl"
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) version=$2; shift 2 ;;
    --dest) dest=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fetch_wheels: unknown option $1" >&2; exit 2 ;;
  esac
done
limit_mib=56 # of the 64 MiB a device call carries: the repository itself travels too
mkdir -p "$dest"
pins=$(grep -Ev '^\s*(#|$)' "$root/bench/device/wheels.txt")
binary=$(echo "$pins" | grep -v '^seqeval==' | tr '\n' ' ')
source_only=$(echo "$pins" | grep '^seqeval==' || true)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dest" $binary 2> >(grep -v "is ignored" >&2)
if [ -n "$source_only" ]; then
  python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$dest" $source_only 2> >(grep -v "is ignored" >&2)
fi
# One version of each: two would stop the whole install on the machine.
dupes=$(ls "$dest"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z_' 'a-z-' | sort | uniq -d)
[ -z "$dupes" ] || { echo "fetch_wheels: more than one wheel of: $dupes (empty $dest first)" >&2; exit 1; }
ls -l "$dest"/*.whl | awk '{printf "  %8.2f MiB  %s\n", $5 / 1048576, $9}'
total=$(du -cm "$dest"/*.whl | tail -1 | cut -f1)
echo "fetch_wheels: $(ls "$dest"/*.whl | wc -l) wheels, ${total} MiB in $dest (limit ${limit_mib} MiB of a device call's 64)"
[ "$total" -le "$limit_mib" ] || { echo "fetch_wheels: too large to carry in one device call" >&2; exit 1; }
