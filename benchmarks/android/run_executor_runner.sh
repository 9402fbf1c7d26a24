#!/usr/bin/env bash
# Push ExecuTorch .pte artefacts to an Android phone and time them with ExecuTorch's executor_runner
# (XNNPACK delegate): threads 1 and 4, a discarded warm-up invocation, then one timed invocation
# whose per-iteration lines (logcat tag ExecuTorch) are kept verbatim as
# OUT/logs/<model>__t<threads>__xnnpack.log, with the phone's getprop in OUT/device.txt;
# `dp-bench import-executorch OUT` converts them to our JSON lines.
#
# Needs: adb with one authorised device (or -s SERIAL), and executor_runner built for arm64 with
# XNNPACK and logging, from an ExecuTorch checkout matching the exporter (1.5.x):
#   cmake . -B cmake-android -DCMAKE_TOOLCHAIN_FILE=$ANDROID_NDK/build/cmake/android.toolchain.cmake \
#     --preset android-arm64-v8a -DANDROID_PLATFORM=android-26 -DEXECUTORCH_BUILD_XNNPACK=ON \
#     -DEXECUTORCH_BUILD_EXECUTOR_RUNNER=ON -DEXECUTORCH_BUILD_EXTENSION_EVALUE_UTIL=ON \
#     -DEXECUTORCH_BUILD_EXTENSION_RUNNER_UTIL=ON -DEXECUTORCH_ENABLE_LOGGING=ON -DCMAKE_BUILD_TYPE=Release
#   cmake --build cmake-android -j --target executor_runner
# Never run in this project's CI: no phone is reachable from here (see benchmarks/android/README.md).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: run_executor_runner.sh -b EXECUTOR_RUNNER [-s SERIAL] [-o OUT] [-t "1 4"] [-r RUNS] [-w WARMUP]
                              MODEL.pte|EXPORT_DIR ...
  -b  path to the executor_runner binary built for the phone (pushed to the phone)
  -s  adb serial (default: the only attached device)
  -o  output folder (default: results/android/<device>-executorch-<date>)
  -t  thread counts (--cpu_threads; default: "1 4")
  -r  timed executions (default: 50); -w warm-up executions, a separate discarded run (default: 10)
USAGE
}

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
parse_args "$@"
connect executor_runner .pte
collect_models .pte ! -name '*.coreml.pte'  # the XNNPACK programs only: a Core ML .pte cannot run on Android
prepare_phone -executorch executor_runner

for model in "${MODELS[@]}"; do
  base=$(basename "$model")
  stem=${base%.pte}
  "${ADB[@]}" push "$model" "$REMOTE/$base" >/dev/null
  for t in $THREADS; do
    name="${stem}__t${t}__xnnpack"
    echo "== $name"
    common=(--model_path="$REMOTE/$base" --cpu_threads="$t" --print_output=none)
    "${ADB[@]}" shell "$REMOTE/executor_runner" "${common[@]}" --num_executions="$WARMUP" >/dev/null 2>&1 || true
    "${ADB[@]}" logcat -c
    "${ADB[@]}" shell "$REMOTE/executor_runner" "${common[@]}" --num_executions="$RUNS" 2>&1 | tr -d '\r' \
      > "$OUT/logs/$name.stdout" || true
    "${ADB[@]}" logcat -d -s ExecuTorch:I ExecuTorch:E | tr -d '\r' > "$OUT/logs/$name.log"
    cat "$OUT/logs/$name.stdout" >> "$OUT/logs/$name.log"  # a runner built with stderr logging
    rm -f "$OUT/logs/$name.stdout"
    grep -E "executed successfully|failed" "$OUT/logs/$name.log" || echo "   (no timings: see $OUT/logs/$name.log)"
  done
done

echo "logs in $OUT; convert with: dp-bench import-executorch $OUT --out results/android-executorch.jsonl"
