#!/usr/bin/env bash
# Runs the engine benchmark on both sides, one after the other (never
# concurrently, so they don't compete for cores), then prints a comparison:
#   1. swift build -c release --product blend-bench
#   2. .build/release/blend-bench --json        > bench-results/swift.jsonl
#   3. .venv/bin/python bench/engine_bench.py   > bench-results/torch.jsonl
#   4. bench/compare.py -> stdout and bench-results/compare.md
# Needs the developer venv (scripts/setup-dev-venv.sh). Extra arguments are
# passed to engine_bench.py (e.g. --repeats 3). OPENBLAS_* variables from the
# environment are deliberately left untouched.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
results=bench-results
python=.venv/bin/python

if [[ ! -x "$python" ]]; then
    echo "error: $python not found; run scripts/setup-dev-venv.sh first" >&2
    exit 1
fi

echo "# Engine benchmark"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "nproc:   $(nproc)"
echo "cpu:     $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
echo "openblas env: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}"
echo

mkdir -p "$results"

echo "==> Building blend-bench (release)" >&2
swift build -c release --product blend-bench >&2

echo "==> Running Swift side" >&2
.build/release/blend-bench --json > "$results/swift.jsonl"

echo "==> Running PyTorch side" >&2
"$python" bench/engine_bench.py "$@" > "$results/torch.jsonl"

echo
"$python" bench/compare.py "$results/swift.jsonl" "$results/torch.jsonl" \
    --markdown-out "$results/compare.md"
echo
echo "Raw results and table in $results/" >&2
