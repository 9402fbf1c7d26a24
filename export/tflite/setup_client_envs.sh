#!/usr/bin/env bash
# Create the two side virtualenvs that dp-export drives through subprocesses (idempotent).
#
#   .venv-tflite-support : tflite-support 0.4.4 (Task Library ImageEmbedder + metadata writer);
#                          it pins protobuf<4, which breaks ai-edge-litert and onnx in .venv.
#   .venv-mediapipe      : mediapipe 1.2.2 (MediaPipe Tasks ImageEmbedder), its own OpenCV/protobuf.
#
# Pinned by export/tflite/client-constraints-*.txt. tflite-support's runtime needs the system library
# libusb-1.0 (Debian: libusb-1.0-0), installed with apt-get when missing.
# Usage: bash export/tflite/setup_client_envs.sh [--force]   (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
force="${1:-}"

if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
    echo "[setup_client_envs] installing libusb-1.0-0 (needed by tflite-support)"
    if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
    $apt_get update -qq && DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq libusb-1.0-0
fi

make_env() {  # make_env DIR CONSTRAINTS CHECK_IMPORT PACKAGE...
    local dir="$1" constraints="$2" check="$3"; shift 3
    local stamp="$dir/.deepproduct-constraints"
    if [ -z "$force" ] && [ -x "$dir/bin/python" ] && [ -f "$stamp" ] \
        && cmp -s "$stamp" "$constraints" && "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "[setup_client_envs] $dir is up to date"
        return
    fi
    echo "[setup_client_envs] creating $dir"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" "$@"
    "$dir/bin/python" -c "$check"
    cp "$constraints" "$stamp"
}

make_env "$root/.venv-tflite-support" "$here/client-constraints-tflite-support.txt" \
    "from tflite_support.task import vision; from tensorflow_lite_support.metadata.python.metadata_writers import metadata_writer" \
    tflite-support==0.4.4 "protobuf<4"
make_env "$root/.venv-mediapipe" "$here/client-constraints-mediapipe.txt" \
    "from mediapipe.tasks.python import vision" \
    mediapipe==1.2.2
echo "[setup_client_envs] done"
