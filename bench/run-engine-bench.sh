#!/usr/bin/env bash
# Runs the engine benchmark on both sides, one after the other (never
# concurrently, so they don't compete for cores), then prints a comparison:
#   1. swift build -c release (blend-bench, blend)
#   2. .build/release/blend-bench --json        > bench-results/swift.jsonl
#   3. the same with OPENBLAS_CORETYPE unset    > bench-results/swift-autodetect.jsonl
#   4. .venv/bin/python bench/engine_bench.py   > bench-results/torch.jsonl
#   5. bench/compare.py -> stdout and bench-results/compare.md
# Needs the developer venv (scripts/setup-dev-venv.sh). Extra arguments are
# passed to both sides: --repeats N, --only NAME[,NAME] (the full-size UNet ops,
# unet_adm256_fwd and unet_adm256_fwd_bwd, run only when named). Step 2 keeps
# this machine's OPENBLAS_* variables as they are.
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
swift build -c release --product blend >&2

echo "==> Running Swift side" >&2
.build/release/blend-bench --json "$@" > "$results/swift.jsonl"

# This machine pins OpenBLAS to its Haswell (AVX2) kernels through OPENBLAS_CORETYPE.
# A second Swift run lets OpenBLAS pick its kernels for the CPU itself, as it does on
# a user's machine where the variable is not set.
echo "==> Running Swift side, OpenBLAS kernels autodetected" >&2
echo "    ($(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .build/release/blend engine 2>/dev/null | sed -n 's/^BLAS kernels: *//p' || true))" >&2
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .build/release/blend-bench --json "$@" > "$results/swift-autodetect.jsonl"

echo "==> Running PyTorch side" >&2
"$python" bench/engine_bench.py "$@" > "$results/torch.jsonl"

echo
"$python" bench/compare.py "$results/swift.jsonl" "$results/torch.jsonl" \
    --swift-alt "$results/swift-autodetect.jsonl" --alt-label "Swift, BLAS autodetect" \
    --markdown-out "$results/compare.md"
echo
echo "Raw results and table in $results/" >&2
