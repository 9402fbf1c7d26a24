#!/usr/bin/env bash
# Web demo tests: npm ci (offline-capable, from the registry only), the JS core's unit tests on
# tests/vectors/ (node --test), then the end-to-end test in headless Debian Chromium.
# Installs nodejs/npm/chromium from Debian when missing. Non-zero exit on any failure.
# The e2e fixture needs the project's Python environment (.venv, from `make setup`).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Reinstall only when the lockfile changed since the last install (npm ci wipes node_modules).
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
    # onnxruntime-web needs no download at install; the env var keeps onnxruntime-node (if ever
    # pulled in transitively) from fetching binaries, so the install works from the registry alone.
    ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-lock
fi

node --test --test-reporter=spec test/ e2e/
