"""Smoke runs of dp-bench on a tiny export (tiny_cnn, 16-d): records are written and valid.

Timing values are never asserted: these are benchmarks, not timed tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.tiny_export import write_tiny_export

from deepproduct.benchmarks.cli import main
from deepproduct.benchmarks.model_stats import onnx_graph_counts
from deepproduct.benchmarks.schema import read_records
from deepproduct.benchmarks.search_bench import bench_search
from deepproduct.sdk.model_manifest import sha256_file, sha256_path

TINY_MACS = 16 * 32 * 32 * 27 + 24 * 16 * 16 * 144 + 32 * 8 * 8 * 216 + 32 * 16  # three convs + the head
TINY_PARAMS = 16 * 27 + 24 * 144 + 32 * 216 + (16 + 24 + 32) + (32 * 16 + 16)  # BN folded into conv biases


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX fp32/int8 + TFLite fp32 + checkpoint, and a Core ML entry this host cannot run."""
    out = write_tiny_export(tmp_path_factory.mktemp("bench") / "export", tflite=True)
    package = out / "model_fp16.mlpackage"
    package.mkdir()
    (package / "Manifest.json").write_text("{}")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["artefacts"].append({"file": package.name, "format": "coreml", "precision": "fp16", "layout": "image",
                                  "input_name": "image", "output_name": "embedding", "sha256": sha256_path(package),
                                  "size_bytes": 2, "parity": []})
    manifest["files"].append({"path": f"{package.name}/Manifest.json", "sha256": sha256_file(package / "Manifest.json"),
                              "size_bytes": 2})
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _run(*args: str) -> None:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.slow  # the tiny export fixture converts to TFLite
def test_onnx_graph_counts_fp32_and_int8(tiny_export: Path) -> None:
    for name in ("model_fp32.onnx", "model_int8.onnx"):
        counts = onnx_graph_counts(tiny_export / name)
        assert (counts.macs, counts.params) == (TINY_MACS, TINY_PARAMS), name


@pytest.mark.slow  # the tiny export fixture converts to TFLite
def test_models_smoke(tiny_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "host.jsonl"
    _run("models", str(tiny_export), "--runs", "3", "--warmup", "1", "--threads", "1", "--batch", "4",
         "--batch-runs", "2", "--out", str(out))
    records = list(read_records([out]))
    sizes = {r["artefact"]: r for r in records if r["kind"] == "model_size"}
    assert set(sizes) == {"onnx/fp32", "onnx/int8", "tflite/fp32", "coreml/fp16", "pytorch/fp32"}
    assert sizes["onnx/int8"]["macs"] == TINY_MACS and sizes["onnx/int8"]["size_bytes"] > 0
    latency = {(r["artefact"], r["batch"]) for r in records if r["kind"] == "latency"}
    assert latency == {(a, b) for a in ("onnx/fp32", "onnx/int8", "tflite/fp32", "pytorch/fp32") for b in (1, 4)}
    for r in records:
        if r["kind"] == "latency":
            assert r["runs"] == (3 if r["batch"] == 1 else 2) and r["threads"] == 1
            assert r["machine"]["cpu_model"] and r["machine"]["libraries"]["onnxruntime"]
    skipped = [r for r in records if r["kind"] == "skipped"]
    assert [s["artefact"] for s in skipped] == ["coreml/fp16"]


@pytest.mark.slow  # the tiny export fixture converts to TFLite
def test_accuracy_smoke(tiny_export: Path, tiny_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "acc.jsonl"
    _run("accuracy", str(tiny_export), "--data", str(tiny_manifest), "--out", str(out))
    acc = {r["artefact"]: r for r in read_records([out]) if r["kind"] == "accuracy"}
    assert set(acc) == {"onnx/fp32", "onnx/int8", "tflite/fp32", "pytorch/fp32"}
    for key in ("onnx/fp32", "tflite/fp32", "pytorch/fp32"):
        assert acc[key]["reference"] == "pytorch/fp32" and acc[key]["cosine_to_reference"] > 0.9999
    assert acc["onnx/int8"]["recall1_baseline"] == "onnx/fp32"
    assert acc["onnx/fp32"]["queries"] > 0 and 0.0 <= acc["onnx/int8"]["recall@1"] <= 1.0


@pytest.mark.slow  # the tiny export fixture converts to TFLite
def test_profile_smoke(tiny_export: Path, tmp_path: Path) -> None:
    md = tmp_path / "profile.md"
    out = tmp_path / "prof.jsonl"
    _run("profile", str(tiny_export / "model_fp32.onnx"), str(tiny_export / "model_int8.onnx"), "--runs", "3",
         "--warmup", "1", "--md", str(md), "--out", str(out))
    ops = {(r["artefact"], r["op_type"]) for r in read_records([out])}
    assert ("onnx/fp32", "Conv") in ops
    assert any(a == "onnx/int8" and op.startswith(("QLinear", "QuantizeLinear", "DequantizeLinear")) for a, op in ops)
    assert "| op type |" in md.read_text()


def test_search_smoke() -> None:
    records = bench_search([2000], batches=[1, 3], runs=2, warmup=1, budget_s=0.5, bandwidth_bytes=32 << 20,
                           progress=False)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "bandwidth" and records[0]["copy_gb_per_s"] > 0
    found = {(r["impl"], r["storage"], r["batch"]): r for r in records if r["kind"] == "search"}
    impls = (("faiss-IndexFlatIP", "float32"), ("faiss-IndexFlatIP-blas", "float32"), ("sdk-GalleryIndex", "float32"),
             ("sdk-GalleryIndex", "int8"), ("sdk-GalleryIndex-numpy", "float32"), ("sdk-GalleryIndex-numpy", "int8"))
    filtered = {(f"{i}-filter10", s, 1) for i in ("sdk-GalleryIndex", "sdk-GalleryIndex-numpy") for s in ("float32", "int8")}
    assert set(found) == {(i, s, b) for i, s in impls for b in (1, 3)} | filtered
    f32 = found[("sdk-GalleryIndex", "float32", 3)]
    # The accelerated float32 scan streams its int8 shadow (a quarter of the bytes); numpy the floats.
    assert f32["overlap_at_k"] == 1.0 and f32["scan"] == "two-stage-int8" and f32["bytes_scanned"] == 2000 * 128
    assert found[("sdk-GalleryIndex-numpy", "float32", 3)]["bytes_scanned"] == 2000 * 128 * 4
    assert found[("sdk-GalleryIndex", "int8", 1)]["bytes_scanned"] == 2000 * 128
    assert found[("sdk-GalleryIndex-filter10", "int8", 1)]["bytes_scanned"] == 2000 * 128 // 10
    assert all(r["overlap_at_k"] == 1.0 for key, r in found.items() if key in filtered)
    assert f32["ratio_to_faiss"] > 0 and f32["ratio_to_best_faiss"] >= f32["ratio_to_faiss"]
    assert f32["bandwidth_bound_ms"] > 0
    # The bound uses the best of the bandwidth samples taken before and after each size.
    bw = records[0]
    assert len(bw["samples_gb_per_s"]) == 2 and bw["copy_gb_per_s"] == pytest.approx(max(bw["samples_gb_per_s"]), abs=1e-3)
    assert f32["bandwidth_bound_ms"] == pytest.approx(2000 * 128 / (bw["copy_gb_per_s"] * 1e6), rel=1e-3, abs=1e-4)


@pytest.mark.slow  # the tiny export fixture converts to TFLite
def test_quick_writes_a_report(tiny_export: Path, tmp_path: Path) -> None:
    _run("quick", str(tiny_export), "--out-dir", str(tmp_path / "bench"), "--search-sizes", "1000", "--only", "onnx")
    text = (tmp_path / "bench" / "report.md").read_text()
    assert "## Summary (host)" in text and "## Exact search vs faiss" in text
    assert (tmp_path / "bench" / "search_scaling.png").is_file()
