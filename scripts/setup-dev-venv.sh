#!/usr/bin/env bash
# Creates the developer-only Python environment (.venv in the repository root)
# used by the PyTorch side of the engine benchmark and by reference checks.
# Users and CI never need Python. Safe to run again: an existing .venv is reused
# and pip only installs what is missing.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
python="${PYTHON:-python3}"

if [[ -x "$venv/bin/python" ]]; then
    echo "==> Reusing existing virtual environment at $venv"
else
    echo "==> Creating virtual environment at $venv (with $("$python" --version 2>&1))"
    "$python" -m venv "$venv"
fi

packages=(
    torch
    numpy
    safetensors
    guided-diffusion-sdk
    clip-anytorch
    lpips
    Pillow            # scripts/make-image-fixtures.py
    "setuptools<70"   # clip imports pkg_resources, removed in later setuptools
)

echo "==> Upgrading pip"
"$venv/bin/python" -m pip install --upgrade pip

echo "==> Installing: ${packages[*]}"
"$venv/bin/python" -m pip install "${packages[@]}"

echo "==> Installed versions:"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ["torch", "numpy", "safetensors", "guided-diffusion-sdk",
             "clip-anytorch", "lpips", "Pillow", "setuptools"]:
    try:
        print(f"    {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"    {name} (not found)")
PY
echo "==> Done. Use $venv/bin/python"
