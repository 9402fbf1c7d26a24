#!/usr/bin/env bash
# Push .tflite artefacts to an Android phone and run TensorFlow Lite's benchmark_model on each:
# threads 1 and 4 with XNNPACK, optionally the GPU and NNAPI delegates. Every run's output is
# kept verbatim (OUT/logs/<model>__t<threads>__<delegate>.log) with the phone's getprop
# (OUT/device.txt); `dp-bench import-android OUT` converts them to our JSON lines.
#
# Needs: adb with one authorised device (or -s SERIAL), and the benchmark_model binary for the
# phone's ABI (android_aarch64_benchmark_model from the TFLite / LiteRT release page or a
# bazel build of //tensorflow/lite/tools/benchmark:benchmark_model --config=android_arm64).
# Never run in this project's CI: no phone is reachable from here (see benchmarks/android/README.md).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: run_benchmark_model.sh -b BENCHMARK_MODEL [-s SERIAL] [-o OUT] [-t "1 4"] [-r RUNS] [-w WARMUP]
                              [--gpu] [--nnapi] MODEL.tflite|EXPORT_DIR ...
  -b  path to the benchmark_model binary built for the phone (pushed to the phone)
  -s  adb serial (default: the only attached device)
  -o  output folder (default: results/android/<device>-<date>)
  -t  thread counts for the CPU/XNNPACK runs (default: "1 4")
  -r  timed runs (default: 50); -w warm-up runs (default: 10)
  --gpu / --nnapi  also run with the GPU / NNAPI delegate (threads do not apply: run once)
EOF
}

# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
GPU=0; NNAPI=0
extra_flag() {
  case "$1" in
    --gpu) GPU=1 ;;
    --nnapi) NNAPI=1 ;;
    *) return 1 ;;
  esac
}
parse_args "$@"
connect benchmark_model .tflite
collect_models .tflite
prepare_phone "" benchmark_model

run() {  # run NAME ARGS... : one benchmark_model invocation, its output kept even when it fails
  local name="$1"; shift
  echo "== $name"
  "${ADB[@]}" shell "$REMOTE/benchmark_model" "$@" 2>&1 | tr -d '\r' > "$OUT/logs/$name.log" || true
  grep -E "Inference timings|ERROR" "$OUT/logs/$name.log" || echo "   (no timings: see $OUT/logs/$name.log)"
}

for model in "${MODELS[@]}"; do
  base=$(basename "$model")
  stem=${base%.tflite}
  "${ADB[@]}" push "$model" "$REMOTE/$base" >/dev/null
  common=(--graph="$REMOTE/$base" --num_runs="$RUNS" --warmup_runs="$WARMUP" --min_secs=0)
  for t in $THREADS; do
    run "${stem}__t${t}__xnnpack" "${common[@]}" --num_threads="$t" --use_xnnpack=true
  done
  if [[ $GPU -eq 1 ]]; then
    run "${stem}__t1__gpu" "${common[@]}" --num_threads=1 --use_gpu=true
  fi
  if [[ $NNAPI -eq 1 ]]; then
    run "${stem}__t1__nnapi" "${common[@]}" --num_threads=1 --use_nnapi=true
  fi
done

echo "logs in $OUT; convert with: dp-bench import-android $OUT --out results/android.jsonl"
