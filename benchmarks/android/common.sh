# Shared by run_benchmark_model.sh and run_executor_runner.sh (sourced, not run): the options both
# take, the adb connection, the models to push, the output folder and the runner binary on the phone.
# The sourcing script defines usage() and may define extra_flag (return 0 when it took flag $1).

BIN=""; SERIAL=""; OUT=""; THREADS="1 4"; RUNS=50; WARMUP=10; INPUTS=()

extra_flag() { return 1; }

parse_args() {  # parse_args "$@": -b -s -o -t -r -w -h, the script's extra flags, the rest are inputs
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -b) BIN="$2"; shift 2 ;;
      -s) SERIAL="$2"; shift 2 ;;
      -o) OUT="$2"; shift 2 ;;
      -t) THREADS="$2"; shift 2 ;;
      -r) RUNS="$2"; shift 2 ;;
      -w) WARMUP="$2"; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      -*) if extra_flag "$1"; then shift; else echo "unknown option $1" >&2; usage >&2; exit 2; fi ;;
      *) INPUTS+=("$1"); shift ;;
    esac
  done
}

connect() {  # connect BINARY_NAME ARTEFACT: checks the inputs, then ADB=(adb [-s SERIAL]) with a device
  [[ -n "$BIN" && -f "$BIN" ]] || { echo "$1 binary not found (-b)" >&2; usage >&2; exit 2; }
  [[ ${#INPUTS[@]} -gt 0 ]] || { echo "no $2 files or export folders given" >&2; usage >&2; exit 2; }
  command -v adb >/dev/null || { echo "adb not on PATH (Android platform-tools)" >&2; exit 2; }
  ADB=(adb)
  [[ -n "$SERIAL" ]] && ADB+=(-s "$SERIAL")
  "${ADB[@]}" get-state >/dev/null || { echo "no authorised device (adb devices)" >&2; exit 1; }
}

collect_models() {  # collect_models EXT [FIND TESTS...]: MODELS = files given + the EXT files in folders given
  local ext="$1"; shift
  MODELS=()
  for item in "${INPUTS[@]}"; do
    if [[ -d "$item" ]]; then
      while IFS= read -r f; do MODELS+=("$f"); done < <(find "$item" -maxdepth 1 -name "*$ext" "$@" | sort)
    else
      MODELS+=("$item")
    fi
  done
  [[ ${#MODELS[@]} -gt 0 ]] || { echo "no $ext files found" >&2; exit 1; }
}

prepare_phone() {  # prepare_phone OUT_TAG NAME: OUT/logs + OUT/device.txt; BIN pushed to $REMOTE/NAME
  DEVICE=$("${ADB[@]}" shell getprop ro.product.model | tr -d '\r' | tr ' /' '__')
  OUT=${OUT:-results/android/${DEVICE}$1-$(date +%Y%m%d-%H%M%S)}
  mkdir -p "$OUT/logs"
  "${ADB[@]}" shell getprop | tr -d '\r' > "$OUT/device.txt"
  REMOTE=/data/local/tmp/deepproduct
  "${ADB[@]}" shell mkdir -p "$REMOTE"
  "${ADB[@]}" push "$BIN" "$REMOTE/$2" >/dev/null
  "${ADB[@]}" shell chmod +x "$REMOTE/$2"
}
