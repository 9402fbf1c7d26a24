#!/usr/bin/env bash
# The SDK alone: a clean virtualenv, `pip install .` with no extras (numpy, Pillow, onnxruntime and
# the small CLI helpers of setup.cfg's install_requires -- never torch), then every deepproduct.sdk
# module imports and `dp-search --help` runs, from outside the checkout so the installed package
# is what is imported. Cheap: no torch, no CUDA wheels; pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Build from a copy of the checkout's files (tracked + untracked, not ignored), so that setuptools'
# build/ and egg-info land in the scratch folder, not in the working tree.
mkdir "$tmp/src"
git ls-files -z -c -o --exclude-standard | xargs -0 tar --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$tmp/src"
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check -c "$repo/constraints.txt" "$tmp/src"
cd "$tmp"
"$tmp/venv/bin/python" - <<'PY'
import importlib
import importlib.metadata as md
import pkgutil
import sys

import deepproduct.sdk as sdk

modules = sorted(m.name for m in pkgutil.iter_modules(sdk.__path__))
for name in modules:
    importlib.import_module(f"deepproduct.sdk.{name}")
for heavy in ("torch", "torchvision", "timm", "onnx", "coremltools", "deepproduct.training", "deepproduct.export"):
    assert heavy not in sys.modules, f"importing the SDK pulled in {heavy}"
installed = {d.metadata["Name"].lower() for d in md.distributions()}
assert "torch" not in installed, "pip install . (no extras) installed torch"
assert sdk.__file__.startswith(sys.prefix), f"imported {sdk.__file__}, not the installed package"
print(f"sdk alone: {len(modules)} deepproduct.sdk modules import without torch; "
      f"{len(installed)} distributions installed")
PY
"$tmp/venv/bin/dp-search" --help > /dev/null
echo "sdk alone: dp-search --help ok"
