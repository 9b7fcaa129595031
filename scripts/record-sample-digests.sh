#!/usr/bin/env bash
# Records Tests/BlendPipelineTests/Fixtures/sample-digests.json: the bits each method makes on
# the tiny models (SampleDigestTests), under every pair of C-kernel level and OpenBLAS kernel
# family this CPU can run. Run it only after a change that is meant to change the numbers, and
# say so in the commit; a refactor must leave the file as it is. Needs `swift build --build-tests`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
levels=(baseline)
coretypes=(Prescott)
has avx && coretypes+=(Sandybridge)
has avx2 fma && { levels+=(avx2); coretypes+=(Haswell Zen); }
has avx512f avx512bw avx512dq avx512vl && { levels+=(avx512); coretypes+=(SkylakeX); }
has avx512f avx512bw avx512dq avx512vl avx512_bf16 && coretypes+=(Cooperlake)
for level in "${levels[@]}"; do
    for coretype in "${coretypes[@]}"; do
        echo "==> C kernels $level, OpenBLAS $coretype" >&2
        # BLEND_KERNELS caps the C kernels; the widest level is what an uncapped run picks.
        cap=()
        [[ "$level" != avx512 ]] && cap=(BLEND_KERNELS=$level)
        env -u BLEND_NUM_THREADS -u BLEND_BLAS_KERNELS "${cap[@]}" OPENBLAS_CORETYPE=$coretype BLEND_RECORD_DIGESTS=1 \
            swift test --skip-build --filter SampleDigestTests >/dev/null
    done
done
echo "recorded: Tests/BlendPipelineTests/Fixtures/sample-digests.json" >&2
