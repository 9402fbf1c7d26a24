#!/usr/bin/env bash
# Syntax-checks every Swift source of the iOS demo (app + DeepProductCore package + tests) with
# tree-sitter-swift, because Linux has no Swift toolchain. Installs node/npm (Debian) and the
# parser (npm, into ios_demo/node_modules, gitignored) when missing. Exit status non-zero on any
# ERROR/MISSING node. The real compile + XCTest run is `swift test` on macOS (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "installing nodejs + npm (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if ! node -e "require('tree-sitter'); require('tree-sitter-swift')" 2>/dev/null; then
    # --ignore-scripts: tree-sitter-swift's install script would try to regenerate the grammar;
    # the rebuild then builds (or picks the prebuilt) native bindings.
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    npm rebuild tree-sitter tree-sitter-swift --loglevel=error
fi

node check_swift_syntax.cjs DeepProductCore DeepProductDemo
