#!/usr/bin/env bash
# Compiles the pure-JVM core at Java 8 level and runs its JUnit 4 tests against tests/vectors/.
# Route: javac + Debian's junit4 jars (no Maven/Gradle download needed, ~10 s). Installs
# default-jdk-headless and junit4 from Debian when missing. Exit status non-zero on any failure;
# prints JUnit's summary and a closing "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")"
CORE_DIR=$(pwd)
VECTORS=${DEEPPRODUCT_VECTORS:-$(cd ../.. && pwd)/tests/vectors}
JUNIT=/usr/share/java/junit4.jar
HAMCREST=/usr/share/java/hamcrest-core.jar

missing=()
command -v javac >/dev/null || missing+=(default-jdk-headless)
[ -f "$JUNIT" ] && [ -f "$HAMCREST" ] || missing+=(junit4)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d "$VECTORS" ]; then
    echo "error: test vectors not found at $VECTORS (generate them with tests/vectors/make_vectors.py)" >&2
    exit 1
fi

OUT="$CORE_DIR/out"
rm -rf "$OUT"
mkdir -p "$OUT/main" "$OUT/test"
# --release 8 checks both the language level and that only Java 8 APIs are used.
javac -nowarn -Xlint:-options --release 8 -encoding UTF-8 -d "$OUT/main" $(find src/main/java -name '*.java')
# The core must stay platform-free: no android.* and no java.nio.file in main sources.
if grep -rnE 'import (android\.|java\.nio\.file)' src/main/java; then
    echo "error: the core must not import android.* or java.nio.file (see README.md)" >&2
    exit 1
fi
javac -nowarn -Xlint:-options --release 8 -encoding UTF-8 -cp "$OUT/main:$JUNIT:$HAMCREST" -d "$OUT/test" $(find src/test/java -name '*.java')
java -Ddeepproduct.vectors="$VECTORS" -cp "$OUT/main:$OUT/test:$JUNIT:$HAMCREST" com.deepproduct.core.AllTests
