# DeepProduct: `make demo` runs the whole path on the embedded benchmark; `make test` runs every test.
# Both set themselves up (make setup) on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deepproduct-installed
DEMO ?= runs/demo
SEED ?= 0
PRODUCTS ?= 400

.PHONY: setup transfer-sources demo demo-stages test test-fast test-sdk-alone lint test-python test-android test-ios test-web clean gpu-bundle

setup: $(STAMP)
	@# Isolated environments for the TFLite Task Library (protobuf<4) and MediaPipe clients
	@# (idempotent: a quick check when they are up to date).
	bash export/tflite/setup_client_envs.sh
	@$(MAKE) --no-print-directory transfer-sources

# Debian packages whose photographs `dp-data transfer` builds the real-image transfer benchmark
# from (docs/transfer-benchmark.md); the pip sources come with the extras above.
TRANSFER_APT := tuxpaint-stamps-default lomiri-wallpapers-16.04
transfer-sources:
	@missing=$$(for p in $(TRANSFER_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing) || \
	  echo "transfer-sources: could not install $$missing (needs root and apt); dp-data transfer will refuse to build a set that differs from its lock (TRANSFER_FLAGS=--allow-missing-sources builds the smaller one)"; \
	fi

# A new venv takes about 9 GB (torch's wheel from PyPI is the CUDA build, its nvidia-* libraries
# included, ~5.5 GB); pip's own "No space left on device" comes minutes in and names no size, so a
# new venv first checks the free space (DP_SETUP_MIN_FREE_GB=0 skips the check).
DP_SETUP_MIN_FREE_GB ?= 10
$(STAMP): setup.cfg pyproject.toml constraints.txt
	@if [ ! -x $(BIN)/python ]; then \
	  free_kb=$$(df -Pk . | awk 'NR==2 {print $$4}'); \
	  if [ "$$free_kb" -lt $$(( $(DP_SETUP_MIN_FREE_GB) * 1024 * 1024 )) ]; then \
	    echo "make setup: $(VENV) needs about $(DP_SETUP_MIN_FREE_GB) GB free on $$(df -P . | awk 'NR==2 {print $$6}'), which has $$(( free_kb / 1024 / 1024 )) GB; free some space first (DP_SETUP_MIN_FREE_GB=0 skips this check)" >&2; \
	    exit 1; \
	  fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[train,export,bench,dev,litert,executorch,distributed]'
	touch $@

CKPT := $(DEMO)/train/contrastive_pca/checkpoints/last.safetensors
DP_MANIFEST := $(DEMO)/data/manifest.csv
# Every training run reads this DEMO's data and writes under it (the configs default to runs/demo).
# The real-image transfer sets (docs/transfer-benchmark.md), built from the locked source files
# (training/data/transfer_sources.lock.json): never trained on. The phone style is scored by every
# training run; the print-screen style (the catalogue photo re-photographed) through the SDK.
# TRANSFER_FLAGS=--allow-missing-sources builds smaller sets on a machine that lacks locked files.
TRANSFER := $(DEMO)/transfer
TRANSFER_MANIFEST := $(TRANSFER)/manifest.csv
TRANSFER_PRINT := $(DEMO)/transfer-print
TRANSFER_PRINT_MANIFEST := $(TRANSFER_PRINT)/manifest.csv
# The demo builds the transfer sets even where a Debian package ships other files than the lock:
# dp-data then names each missing or different file and the products it costs, and records it in
# transfer.json (a plain `dp-data transfer` refuses instead). TRANSFER_FLAGS= makes the demo strict.
TRANSFER_FLAGS ?= --allow-missing-sources
DEMO_TRAIN = out_dir=$(DEMO)/train data.manifest=$(DP_MANIFEST) eval.transfer_manifest=$(TRANSFER_MANIFEST)

# `demo` runs the stages, then prints a one-screen pass/fail summary whatever their outcome.
demo: setup
	@mkdir -p $(DEMO) && touch $(DEMO)/.demo-start
	@status=0; $(MAKE) --no-print-directory demo-stages DEMO=$(DEMO) SEED=$(SEED) PRODUCTS=$(PRODUCTS) || status=$$?; \
	  if [ $$status = 0 ]; then $(BIN)/python -m deepproduct.benchmarks.results_table collect --demo $(DEMO) \
	    --out $(DEMO)/report/summary.json || status=$$?; fi; \
	  echo; $(BIN)/python -m deepproduct.benchmarks.demo_summary --demo $(DEMO) --status $$status

demo-stages:
	@echo "== 1/5 embedded benchmark data"
	$(BIN)/dp-data synth --out $(DEMO)/data --products $(PRODUCTS) --seed $(SEED)
	$(BIN)/dp-data transfer --out $(TRANSFER) --products 300 --seed 0 --train-manifest $(DP_MANIFEST) $(TRANSFER_FLAGS)
	$(BIN)/dp-data transfer --style print-screen --out $(TRANSFER_PRINT) --products 300 --seed 0 \
	  --train-manifest $(DP_MANIFEST) $(TRANSFER_FLAGS)
	@# The default (configs/demo.yaml) is classical contrastive + PCA head; its log also holds the
	@# trained head before the projection (the classical contrastive row). Recipe comparisons (the
	@# former default, robust contrastive + multitask, among them) are `dp-bench ablation`'s job.
	@echo "== 2/5 training: off-the-shelf (both transfer styles), contrastive + PCA head (default)"
	$(BIN)/dp-train --config configs/demo.yaml --eval-only --off-the-shelf --quiet name=offtheshelf seed=$(SEED) $(DEMO_TRAIN)
	$(BIN)/dp-train --config configs/demo.yaml --eval-only --off-the-shelf --quiet name=offtheshelf-print seed=$(SEED) \
	  out_dir=$(DEMO)/train data.manifest=$(TRANSFER_PRINT_MANIFEST)
	$(BIN)/dp-train --config configs/demo.yaml --overwrite seed=$(SEED) $(DEMO_TRAIN)
	$(BIN)/python -m deepproduct.training.eval.report --out $(DEMO)/report/10-training.md \
	  --baseline $(DEMO)/train/offtheshelf/eval.json \
	  --run "classical contrastive + PCA head (default)=$(DEMO)/train/contrastive_pca"
	@echo "== 3/5 export: ONNX, TFLite, Core ML (fp32 + int8) with parity checks"
	$(BIN)/dp-export export $(CKPT) --out $(DEMO)/export --overwrite --calib $(DP_MANIFEST) \
	  --formats onnx,tflite,coreml,executorch,executorch-coreml --quantize none,int8 --report $(DEMO)/report/20-export.md
	@echo "== 4/5 search through the SDK: index held-out shop images, query with held-out phone photos"
	mkdir -p $(DEMO)/search
	$(BIN)/dp-search build --model $(DEMO)/export --images $(DP_MANIFEST) --split test --domain shop \
	  --out $(DEMO)/search/catalogue.dpindex --no-progress
	$(BIN)/dp-search build --model $(DEMO)/export --images $(DP_MANIFEST) --split test --domain shop \
	  --storage int8 --out $(DEMO)/search/catalogue-int8.dpindex --no-progress
	$(BIN)/dp-search evaluate --index $(DEMO)/search/catalogue.dpindex --model $(DEMO)/export \
	  --queries $(DP_MANIFEST) --json --no-progress --contact-sheet $(DEMO)/report/contact_sheet.png \
	  > $(DEMO)/search/sdk-float32.json
	$(BIN)/dp-search evaluate --index $(DEMO)/search/catalogue-int8.dpindex --model $(DEMO)/export \
	  --queries $(DP_MANIFEST) --json --no-progress > $(DEMO)/search/sdk-int8.json
	$(BIN)/dp-search build --model $(DEMO)/export --images $(TRANSFER_MANIFEST) --split test --domain shop \
	  --out $(DEMO)/search/transfer.dpindex --no-progress
	$(BIN)/dp-search evaluate --index $(DEMO)/search/transfer.dpindex --model $(DEMO)/export \
	  --queries $(TRANSFER_MANIFEST) --json --no-progress > $(DEMO)/search/sdk-transfer.json
	$(BIN)/dp-search build --model $(DEMO)/export --images $(TRANSFER_PRINT_MANIFEST) --split test --domain shop \
	  --out $(DEMO)/search/transfer-print.dpindex --no-progress
	$(BIN)/dp-search evaluate --index $(DEMO)/search/transfer-print.dpindex --model $(DEMO)/export \
	  --queries $(TRANSFER_PRINT_MANIFEST) --json --no-progress > $(DEMO)/search/sdk-transfer-print.json
	@# The int8 models through the SDK, gallery and queries alike (as on a phone).
	for fmt in onnx tflite; do \
	  $(BIN)/dp-search build --model $(DEMO)/export --images $(DP_MANIFEST) --split test --domain shop \
	    --format $$fmt --precision int8 --out $(DEMO)/search/catalogue-$$fmt-int8-model.dpindex --no-progress && \
	  $(BIN)/dp-search evaluate --index $(DEMO)/search/catalogue-$$fmt-int8-model.dpindex --model $(DEMO)/export \
	    --format $$fmt --precision int8 --queries $(DP_MANIFEST) --json --no-progress \
	    > $(DEMO)/search/sdk-$$fmt-int8-model.json; \
	done
	$(BIN)/python -m deepproduct.benchmarks.search_stage_report \
	  --training $(DEMO)/train/contrastive_pca/summary.json \
	  --sdk-int8-model ONNX=$(DEMO)/search/sdk-onnx-int8-model.json \
	  --sdk-int8-model TFLite=$(DEMO)/search/sdk-tflite-int8-model.json \
	  --sdk-float32 $(DEMO)/search/sdk-float32.json --sdk-int8 $(DEMO)/search/sdk-int8.json \
	  --sdk-transfer $(DEMO)/search/sdk-transfer.json --offtheshelf $(DEMO)/train/offtheshelf/eval.json \
	  --sdk-transfer-print $(DEMO)/search/sdk-transfer-print.json \
	  --offtheshelf-print $(DEMO)/train/offtheshelf-print/eval.json \
	  --contact-sheet contact_sheet.png --out $(DEMO)/report/30-search.md
	@echo "== 5/5 short host benchmark"
	$(BIN)/dp-bench quick $(DEMO)/export --data $(DP_MANIFEST) --checkpoint $(CKPT) --out-dir $(DEMO)/bench
	cp $(DEMO)/bench/report.md $(DEMO)/report/40-bench.md
	cp $(DEMO)/bench/*.png $(DEMO)/report/ 2>/dev/null || true
	cat $(DEMO)/report/[0-9]*.md > $(DEMO)/report/report.md

lint: setup
	$(BIN)/ruff check .

test-python: setup
	$(BIN)/pytest -q

# The fast lane: everything but the tests marked slow (converter round trips, training runs);
# `make test` still runs all of them.
test-fast: setup
	$(BIN)/pytest -q -m "not slow"

# The SDK alone: a clean venv, `pip install .` without extras, every deepproduct.sdk module imports.
test-sdk-alone:
	bash .ci/sdk_alone.sh

test-android:
	bash android_demo/core/run_tests.sh

test-ios:
	bash ios_demo/check_syntax.sh

test-web: setup
	bash web_demo/run_tests.sh

test: lint test-python test-android test-ios test-web

# The GPU check's carry folder (benchmarks/gpu/run_gpu_check.sh, docs/benchmarks.md "GPU check"):
# wheels of what the GPU machine lacks, at constraints.txt's pins, for CPython 3.12 manylinux x86_64,
# plus the project's own wheel; fails when it will not install there or the working tree and it
# exceed the 64 MiB carry limit. GPU_BUNDLE_LITE: EfficientNet-Lite variants whose weights to carry.
GPU_BUNDLE ?= .gpu-bundle
GPU_BUNDLE_LITE ?= 0
gpu-bundle: $(STAMP)
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w $(GPU_BUNDLE) .
	$(BIN)/python -m benchmarks.gpu.bundle pins --constraints constraints.txt --lite "$(GPU_BUNDLE_LITE)" > $(GPU_BUNDLE)/requirements.txt
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  $$($(BIN)/python -m benchmarks.gpu.bundle platforms | sed 's/^/--platform /') \
	  -d $(GPU_BUNDLE) -r $(GPU_BUNDLE)/requirements.txt
	$(BIN)/python -m benchmarks.gpu.bundle check $(GPU_BUNDLE) --repo .

clean:
	rm -rf $(DEMO) .pytest_cache
