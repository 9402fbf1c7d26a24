#!/usr/bin/env bash
# The GPU check (docs/benchmarks.md, "GPU check"): one script, run once on a lent GPU machine, that
# installs what that machine lacks from the carried bundle (make gpu-bundle), makes the demo data,
# runs `pytest -m gpu`, and measures training throughput on the GPU and on that machine's CPU,
# writing everything under OUTDIR. Why one script: the machine is lent for minutes, with no
# package registry; a run must need nothing but the checkout and .gpu-bundle, and end in under
# 8 minutes so that one rerun fits.
#
#   bash benchmarks/gpu/run_gpu_check.sh OUTDIR [--dry-run] [--no-install] [--tar FILE]
#
#   --dry-run     stop before the GPU steps, with tiny CPU settings (also what happens when no
#                 CUDA device is visible, e.g. CUDA_VISIBLE_DEVICES=); a couple of minutes on 2 cores
#   --no-install  use $PYTHON as it is (it must import deepproduct) instead of a venv + the bundle
#   --tar FILE    also pack OUTDIR into FILE (the device tool returns at most 8 files)
#
# Environment: PYTHON (default python3: the machine's interpreter with torch), GPU_BUNDLE (default
# REPO/.gpu-bundle), GPU_CHECK_WORK (scratch; default a new /tmp folder), GPU_CHECK_BUDGET_S (the
# time after which no new step starts; default 450 s), GPU_CHECK_PRODUCTS (dp-data synth --products).
set -euo pipefail

usage() { sed -n '9,19p' "$0" | sed 's/^# \{0,1\}//'; }

OUTDIR="" DRY_RUN=0 INSTALL=1 TAR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --no-install) INSTALL=0 ;;
    --tar) TAR=${2:?--tar needs a file}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run_gpu_check: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$OUTDIR" ] || { echo "run_gpu_check: one OUTDIR only" >&2; exit 2; }; OUTDIR=$1 ;;
  esac
  shift
done
[ -n "$OUTDIR" ] || { usage >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
BUNDLE=${GPU_BUNDLE:-$REPO/.gpu-bundle}
WORK=${GPU_CHECK_WORK:-$(mktemp -d /tmp/dp-gpu-check.XXXXXX)}
BUDGET_S=${GPU_CHECK_BUDGET_S:-450}
mkdir -p "$OUTDIR/logs" "$WORK"
OUTDIR=$(cd "$OUTDIR" && pwd)
[ -z "$TAR" ] || TAR=$(cd "$(dirname "$TAR")" && pwd)/$(basename "$TAR")
RECORDS=$OUTDIR/records.jsonl
: > "$RECORDS"
printf 'step\trc\tseconds\n' > "$OUTDIR/steps.tsv"
cd "$REPO"
# cuBLAS is deterministic only with a fixed workspace (the trainer asks for deterministic algorithms).
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8} PYTHONUNBUFFERED=1
CORES=$(nproc 2>/dev/null || echo 2)

if [ "$DRY_RUN" = 1 ]; then  # tiny: the code paths, not the figures
  PRODUCTS=${GPU_CHECK_PRODUCTS:-24} LOADER_ARGS=(--pk 4x2 --workers 0,1 --batches 2 --image-size 128)
  CPU_RECIPE_ARGS=(--steps 2 --warmup 1) CPU_SWEEP_ARGS=(--pk 2x2 --amp off --image-size 64 --steps 2 --warmup 1)
else
  PRODUCTS=${GPU_CHECK_PRODUCTS:-80}
  LOADER_ARGS=(--pk 32x4 --workers "$(printf '%s\n' 1 4 "$CORES" | sort -nu | paste -sd,)" --batches 6 --image-size 224)
  CPU_RECIPE_ARGS=(--steps 6 --warmup 2)
fi
GPU_RECIPE_ARGS=(--steps 30 --warmup 5)
GPU_SWEEP_ARGS=(--pk 16x4,32x4 --amp on,off --image-size 224 --steps 15 --warmup 5 --distinct-batches 2)
E2E_STEPS=20

FAILED=()
say() { echo "== $*"; }
left() { echo $(( BUDGET_S - SECONDS )); }

# step NAME LIMIT_S CMD...: run with a time limit (never past the budget), log to logs/NAME.log.
# A shell function runs in this shell (what it sets stays set) and without the time limit.
step() {
  local name=$1 limit=$2 rc=0 start=$SECONDS
  shift 2
  if [ "$(left)" -lt "$limit" ]; then limit=$(left); fi
  if [ "$limit" -le 5 ]; then
    say "$name: skipped, the ${BUDGET_S} s budget is spent"
    py -m benchmarks.gpu.throughput skip --out "$RECORDS" --what "$name" \
      --reason "not started: the check's ${BUDGET_S} s budget was spent" >/dev/null 2>&1 || true
    printf '%s\tskipped\t0\n' "$name" >> "$OUTDIR/steps.tsv"
    FAILED+=("$name(skipped)")
    return 0
  fi
  say "$name (limit ${limit} s)"
  if declare -F "$1" >/dev/null; then
    "$@" > "$OUTDIR/logs/$name.log" 2>&1 || rc=$?
  else
    timeout --kill-after=10 "$limit" "$@" > "$OUTDIR/logs/$name.log" 2>&1 || rc=$?
  fi
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( SECONDS - start ))" >> "$OUTDIR/steps.tsv"
  if [ "$rc" != 0 ]; then
    say "$name FAILED (rc=$rc$([ "$rc" = 124 ] && echo ', time limit')); last lines of logs/$name.log:"
    tail -n 25 "$OUTDIR/logs/$name.log" | sed 's/^/   /'
    FAILED+=("$name")
  else
    say "$name: ok in $(( SECONDS - start )) s"
  fi
  return 0
}
require() {
  local f
  for f in "${FAILED[@]:-}"; do
    if [ "$f" = "$1" ] || [ "$f" = "$1(skipped)" ]; then say "cannot go on without $1"; finish; exit 1; fi
  done
}

VPY=$PYTHON
py() { "$VPY" "$@"; }

# -- 1. install the bundle into a venv that also sees the machine's own packages -----------------
install_bundle() {
  [ -d "$BUNDLE" ] || { echo "no bundle at $BUNDLE: run 'make gpu-bundle' and carry .gpu-bundle"; return 1; }
  local venv=$WORK/venv site wheels
  if "$PYTHON" -m venv --without-pip --system-site-packages "$venv"; then
    # The machine's python3 is itself a venv (/opt/torch/.venv): show its packages to ours, after ours.
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
    "$PYTHON" -m benchmarks.gpu.bundle parent-pth "$site/_dp_parent_env.pth" || return 1
    VPY=$venv/bin/python
    wheels=$("$VPY" -m benchmarks.gpu.bundle installable "$BUNDLE") || return 1
    echo "installing the wheels this interpreter accepts:"; echo "$wheels" | sed 's/^/  /'
    # shellcheck disable=SC2086
    "$VPY" -m pip install --no-index --find-links "$BUNDLE" --no-cache-dir --disable-pip-version-check $wheels \
      || return 1
  else  # no venv module here: install into a folder on PYTHONPATH instead
    echo "venv failed; installing into $WORK/site with PYTHONPATH"
    wheels=$("$PYTHON" -m benchmarks.gpu.bundle installable "$BUNDLE") || return 1
    # shellcheck disable=SC2086
    "$PYTHON" -m pip install --no-index --find-links "$BUNDLE" --no-cache-dir --target "$WORK/site" $wheels \
      || return 1
    export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH} PATH=$WORK/site/bin:$PATH
  fi
}

finish() {
  py -m benchmarks.gpu.throughput summary --records "$RECORDS" --junit "$OUTDIR/pytest-gpu.xml" \
    --md-out "$OUTDIR/summary.md" --json-out "$OUTDIR/summary.json" > "$OUTDIR/logs/summary.log" 2>&1 \
    || echo "summary failed: see $OUTDIR/logs/summary.log"
  printf '%s\n' "${FAILED[@]:-}" | sed '/^$/d' > "$OUTDIR/failed.txt"
  if [ -n "$TAR" ]; then
    tar -czf "$TAR" -C "$(dirname "$OUTDIR")" "$(basename "$OUTDIR")"
  fi
  say "done in $SECONDS s; $OUTDIR/summary.md:"
  cat "$OUTDIR/summary.md" 2>/dev/null || true
}

if [ "$INSTALL" = 1 ]; then
  step install 150 install_bundle
  require install
fi
step smoke 60 "$VPY" -m benchmarks.gpu.bundle smoke
require smoke
py -m pip list --format=freeze > "$OUTDIR/pip-freeze.txt" 2>/dev/null || true
DPDATA=$(dirname "$VPY")/dp-data
[ -x "$DPDATA" ] || DPDATA=""
HAS_CUDA=$(py -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
export DP_GPU_CHECK_RUN_ID
DP_GPU_CHECK_RUN_ID=$(py -c 'from deepproduct.benchmarks.schema import new_run_id; print(new_run_id())')

# -- 2. demo data ------------------------------------------------------------------------------------
DATA=$WORK/data
rm -rf "$DATA"
if [ -n "$DPDATA" ]; then
  step synth 90 "$DPDATA" synth --out "$DATA" --products "$PRODUCTS" --seed 0 --workers "$CORES"
else
  step synth 90 "$VPY" -m deepproduct.training.data_cli synth --out "$DATA" --products "$PRODUCTS" --seed 0 --workers "$CORES"
fi
require synth
MANIFEST=$DATA/manifest.csv
DRY=()
[ "$DRY_RUN" = 1 ] && DRY=(--dry-run)

# -- 3. the CUDA tests (they skip, with their reason, where CUDA is missing) -----------------------------
step pytest-gpu 240 "$VPY" -m pytest -m gpu tests/gpu -q -rs -p no:cacheprovider --junitxml "$OUTDIR/pytest-gpu.xml"

# -- 4. on this machine's CPU: the data loader alone, the default recipe at 224 px -----------------------
step loader 90 "$VPY" -m benchmarks.gpu.throughput loader --out "$RECORDS" --manifest "$MANIFEST" "${LOADER_ARGS[@]}" "${DRY[@]}"
step recipe-cpu 120 "$VPY" -m benchmarks.gpu.throughput recipe --out "$RECORDS" --manifest "$MANIFEST" \
  --work "$WORK/train" --device cpu --image-size 224 "${CPU_RECIPE_ARGS[@]}" "${DRY[@]}"

# -- 5. the GPU steps ----------------------------------------------------------------------------------------
if [ "$DRY_RUN" = 1 ] || [ "$HAS_CUDA" != 1 ]; then
  why=$([ "$DRY_RUN" = 1 ] && echo "dry run (--dry-run)" || echo "no CUDA device visible (torch.cuda.is_available() is False)")
  say "stopping before the GPU steps: $why"
  if [ "$DRY_RUN" = 1 ]; then  # the sweep's code on the CPU, tiny, so that a dry run exercises it too
    step sweep-cpu-tiny 90 "$VPY" -m benchmarks.gpu.throughput sweep --out "$RECORDS" --manifest "$MANIFEST" \
      --work "$WORK/train" --device cpu "${CPU_SWEEP_ARGS[@]}" --dry-run
  fi
  py -m benchmarks.gpu.throughput skip --out "$RECORDS" --what "GPU steps (recipe on cuda, P x K sweep, dp-train end to end)" \
    --reason "$why" >/dev/null
else
  nvidia-smi > "$OUTDIR/nvidia-smi.txt" 2>&1 || true
  step recipe-cuda 120 "$VPY" -m benchmarks.gpu.throughput recipe --out "$RECORDS" --manifest "$MANIFEST" \
    --work "$WORK/train" --device cuda --image-size 224 "${GPU_RECIPE_ARGS[@]}"
  step sweep-cuda 150 "$VPY" -m benchmarks.gpu.throughput sweep --out "$RECORDS" --manifest "$MANIFEST" \
    --work "$WORK/train" --device cuda "${GPU_SWEEP_ARGS[@]}"
  # The whole default recipe once on the GPU: evaluation, PCA head and checkpoint on CUDA too.
  DPTRAIN=("$(dirname "$VPY")/dp-train")
  [ -x "${DPTRAIN[0]}" ] || DPTRAIN=("$VPY" -m deepproduct.training.train_cli)
  step dp-train-cuda 150 "${DPTRAIN[@]}" --config configs/demo.yaml --quiet device=cuda data.image_size=224 \
    optim.epochs=1 "optim.steps_per_epoch=$E2E_STEPS" "data.manifest=$MANIFEST" "out_dir=$WORK/train" \
    name=e2e-cuda eval.transfer_manifest=null
  cp "$WORK/train/e2e-cuda/summary.json" "$OUTDIR/dp-train-cuda-summary.json" 2>/dev/null || true
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv >> "$OUTDIR/nvidia-smi.txt" 2>&1 || true
fi

finish
[ "${#FAILED[@]}" = 0 ] || { say "failed: ${FAILED[*]}"; exit 1; }
