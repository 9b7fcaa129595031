#!/usr/bin/env bash
# Installs the Debian packages blend builds against, when any is missing:
# OpenBLAS (the tensor engine's GEMM), oneDNN (its bf16 and some fp32 convolutions), libpng and libjpeg-turbo's TurboJPEG API
# (image files), zlib (gzip'd files such as CLIP's vocabulary), and pkg-config (how
# SwiftPM finds them). With --browser also Chromium and chromedriver, which the test
# suite drives to check the web app's page (scripts/test.sh passes it).
# Runs non-interactively (CI=true, no stdin); uses sudo when not root.
set -euo pipefail

packages=(pkg-config libopenblas-dev libdnnl-dev libpng-dev libturbojpeg0-dev zlib1g-dev)
if [[ "${1:-}" == "--browser" ]]; then
    packages+=(chromium chromium-driver)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "==> installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
