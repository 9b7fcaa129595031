#!/usr/bin/env bash
# Runs the suites whose results could depend on OpenBLAS's kernels (the GEMM split, the
# float64 property tests, sample-i determinism of both methods, the models' parity fixtures,
# bf16) once under each OPENBLAS_CORETYPE this CPU can execute other than the one OpenBLAS
# picks for it, which the whole suite has just run under. A kernel set that rounds an element
# by where it sits in a product then fails on any x86 machine that can run it, not only on the
# CPU that has those kernels by default (measured: OpenBLAS 0.3.21's x86-64 sets). RealShapeTests
# is not repeated: its 16-against-1-thread property rests on the row split's invariance, which
# GEMMSplitTests checks under each set. Called by scripts/test.sh after `swift build --build-tests`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

suites='GEMMSplitTests|ThreadCountPropertyTests|DeterminismTests|SampleDigestTests|ParityTests|StableDiffusionParityTests|GuidedStepTests|BF16EditTests|BF16AccuracyTests'
if [[ "$(uname -m)" != x86_64 ]]; then
    # Debian's OpenBLAS has several kernel sets on arm64 too; their names are not listed here
    # yet, so only the one OpenBLAS picks (the whole suite's run) is tested.
    echo "==> kernel sets: only OpenBLAS's own choice is tested on $(uname -m) (add its core types here)" >&2
    exit 0
fi
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
coretypes=()
has pni && coretypes+=(Prescott)   # pni: SSE3
has avx && coretypes+=(Sandybridge)
has avx2 fma && coretypes+=(Haswell Zen)
has avx512f avx512bw avx512dq avx512vl && coretypes+=(SkylakeX)
has avx512f avx512bw avx512dq avx512vl avx512_bf16 && coretypes+=(Cooperlake)
default=$(env -u OPENBLAS_CORETYPE -u BLEND_NUM_THREADS .build/debug/blend engine | sed -n 's/^BLAS kernels: *\([^ :]*\).*/\1/p')
for coretype in "${coretypes[@]}"; do
    if [[ "$coretype" == "$default" ]]; then continue; fi
    echo "==> OPENBLAS_CORETYPE=$coretype (this CPU's own: $default)" >&2
    env -u BLEND_NUM_THREADS OPENBLAS_CORETYPE=$coretype swift test --skip-build --filter "$suites"
done
