#!/usr/bin/env bash
# The full-size random-weight Stable Diffusion 1.5 rows of issue #11, side by side: for each
# row, blend-bench with this machine's OPENBLAS_* settings, blend-bench with OpenBLAS's own
# kernel choice, then diffusers/transformers on PyTorch (CPU, fp32), each in its own process so
# every peak RSS is that row's alone; then bench/compare.py. Rows run one after another,
# interleaved, so a change of load on a shared machine hits all three columns alike.
#   bench/run-sd-bench.sh [--repeats N] [--append] [ROW ...]
# --append adds to the results of an earlier run instead of starting afresh (to split the rows
# over several holds of the benchmark lock); the table covers all of them.
# Rows: sd15_text_encoder sd15_vae_encode_512 sd15_vae_decode_512 sd15_unet_cfg_step sd15_edit_default
# (default: all). sd15_edit_default, a whole default one-sample Blended Latent Diffusion edit (minutes
# a run), runs once without warm-up on each side and without the autodetect column (on this
# project's Zen 3 machine OpenBLAS autodetects its Zen target, which runs the same AVX2 kernels
# as the Haswell pin).
# Needs a release blend-bench (swift build -c release --product blend-bench) and the dev venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
results=bench-results
python=.venv/bin/python
repeats=1
append=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repeats) repeats=$2; shift 2 ;;
        --append) append=1; shift ;;
        *) break ;;
    esac
done
rows=("$@")
[[ ${#rows[@]} -gt 0 ]] || rows=(sd15_text_encoder sd15_vae_encode_512 sd15_vae_decode_512 sd15_unet_cfg_step sd15_edit_default)

mkdir -p "$results"
if [[ $append == 0 ]]; then
    : > "$results/sd-swift.jsonl"; : > "$results/sd-swift-autodetect.jsonl"; : > "$results/sd-torch.jsonl"
fi
echo "# SD 1.5 benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "openblas env: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>}"
for row in "${rows[@]}"; do
    echo "==> $row ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if [[ "$row" == sd15_edit_default ]]; then
        runs=(--warmup 0 --repeats 1)
    else
        runs=(--repeats "$repeats")
    fi
    .build/release/blend-bench --json "${runs[@]}" --only "$row" >> "$results/sd-swift.jsonl"
    if [[ "$row" != sd15_edit_default ]]; then
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .build/release/blend-bench --json --repeats "$repeats" --only "$row" \
            >> "$results/sd-swift-autodetect.jsonl"
    fi
    "$python" bench/engine_bench.py "${runs[@]}" --only "$row" >> "$results/sd-torch.jsonl"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" bench/compare.py "$results/sd-swift.jsonl" "$results/sd-torch.jsonl" \
    --swift-alt "$results/sd-swift-autodetect.jsonl" --alt-label "Swift, BLAS autodetect" \
    --markdown-out "$results/sd-compare.md"
