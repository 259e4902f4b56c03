#!/usr/bin/env bash
# Installs earthmind-sdk, its plugins, the kernels and the test tools into the active Python
# environment (make and activate a venv first). See "Install" in README.md.
#
# Why three steps: torch/torchvision are pinned as a matched pair through constraints.txt so
# that timm and sam2 cannot pull a second torch; sam2 is an sdist whose build imports torch,
# so it is built without isolation, after torch, with its CUDA extension off unless asked for.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pip="python -m pip"
c="$here/constraints.txt"

$pip install -q -U pip setuptools wheel
$pip install -q -c "$c" torch torchvision
pkgs=(-e "$here[dev,map]")
for extra in plugins/sar plugins/multispectral kernels; do
  [ -f "$here/$extra/pyproject.toml" ] && pkgs+=(-e "$here/$extra")
done
$pip install -q -c "$c" "${pkgs[@]}"
SAM2_BUILD_CUDA="${SAM2_BUILD_CUDA:-0}" $pip install -q -c "$c" --no-build-isolation "sam2==1.1.0"
python -m pip check
