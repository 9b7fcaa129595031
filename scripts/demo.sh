#!/usr/bin/env bash
# The README's first command: installs what blend needs, builds it, and runs a demo edit of
# examples/photo.png ("a red ball" where examples/mask.png is white) into demo-output/.
#
# The model weights are not in the repository. They are looked for in the model cache
# ($BLEND_MODELS_DIR, else $XDG_CACHE_HOME/blend/models, else ~/.cache/blend/models) and
# downloaded there when missing; when they cannot be downloaded (offline), the script says
# exactly which files it needs and where to put them.
#
# Options are passed to `blend edit`, e.g. scripts/demo.sh --samples 4 --prompt "a stone".
# `scripts/demo.sh --method latent` runs Blended Latent Diffusion on Stable Diffusion 1.5
# instead (it needs v1-5-pruned-emaonly.safetensors rather than the guided-diffusion UNet).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
swift build -c release --product blend
blend=.build/release/blend

cache="${BLEND_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/blend/models}"
models=(256x256_diffusion_uncond:256x256_diffusion_uncond.pt ViT-B-16:ViT-B-16.pt clip-vocab:bpe_simple_vocab_16e6.txt.gz)
args=" $* "
if [[ "$args" == *" --method latent "* || "$args" == *" --method=latent "* ]]; then
    models=(stable-diffusion-v1-5:v1-5-pruned-emaonly.safetensors ViT-B-16:ViT-B-16.pt clip-vocab:bpe_simple_vocab_16e6.txt.gz)
fi
missing=()
for model in "${models[@]}"; do
    name=${model%%:*} file=${model#*:}
    if [[ ! -f "$cache/$file" ]]; then
        echo "==> $file is not in $cache: downloading it" >&2
        "$blend" models download "$name" --cache-dir "$cache" || missing+=("$name:$file")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    {
        echo
        echo "The demo needs these model files, which could not be downloaded here:"
        for model in "${missing[@]}"; do
            echo "  $cache/${model#*:}    (blend models download ${model%%:*})"
        done
        echo "Copy them there (or set BLEND_MODELS_DIR to the folder that holds them) and run this again."
    } >&2
    exit 1
fi

# Two edits at the method's defaults (the pixel method's reference makes 32): on a 2-core
# CPU a pixel edit takes about 75 steps of 25-30 s. Pass --samples to make more.
"$blend" edit examples/photo.png --mask examples/mask.png --prompt "a red ball" \
    --out demo-output --samples 2 --batch 1 --models-dir "$cache" "$@"
echo "Results: demo-output/latest/ranked/ (best first) and demo-output/latest/contact_sheet.png"
