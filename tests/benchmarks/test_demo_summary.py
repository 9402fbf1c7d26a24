"""make demo's closing summary: PASS/FAIL per stage from this run's outputs, never from stale ones."""

from __future__ import annotations

import json
import os
import time

from deepproduct.benchmarks import demo_summary


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _demo(tmp_path):
    demo = tmp_path / "demo"
    _write(demo / "data" / "manifest.csv", "path,product_id,domain,split,tags\na,p,shop,train,\nb,p,user,test,\n")
    _write(demo / "train" / "classical_contrastive" / "summary.json", json.dumps({"final": {"recall@1": 0.772}}))
    _write(demo / "train" / "offtheshelf" / "eval.json", json.dumps({"recall@1": 0.413}))
    _write(demo / "report" / "10-training.md", "x")
    gate = {"drop_points": -0.54, "p_value": 1.0}
    _write(demo / "export" / "manifest.json", json.dumps({"parity": {"passed": True}, "artefacts": [
        {"format": "onnx", "precision": "fp32", "parity": [{"cosine_mean": 1.0}]},
        {"format": "onnx", "precision": "int8", "parity": [{"cosine_mean": 0.9991, "recall_gate": gate}]}]}))
    _write(demo / "search" / "sdk-float32.json", json.dumps({"recall@1": 0.7527}))
    _write(demo / "search" / "sdk-int8.json", json.dumps({"recall@1": 0.7446}))
    _write(demo / "report" / "30-search.md", "x")
    _write(demo / "bench" / "report.md", "x")
    rows = [{"kind": "latency", "threads": 1, "batch": 1, "artefact": "onnx/fp32", "median_ms": 5.3},
            {"kind": "latency", "threads": 1, "batch": 1, "artefact": "onnx/int8", "median_ms": 2.65}]
    _write(demo / "bench" / "host.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    return demo


def test_a_complete_run_passes_with_its_figures(tmp_path):
    demo = _demo(tmp_path)
    text = demo_summary.render(demo, demo_summary.summarise(demo), 0)
    assert text.splitlines()[0].startswith("== make demo: PASSED")
    assert "classical_contrastive R@1 77.2" in text and "off-the-shelf 41.3" in text
    assert "onnx/int8 +0.5 pts (p=1)" in text and "min mean cos 0.9991" in text
    assert "int8 index R@1 74.5" in text and "onnx int8 2.00x fp32" in text
    assert f"report: {demo / 'report' / 'report.md'}" in text and len(text.splitlines()) <= 12


def test_stale_outputs_and_a_failed_stage_read_as_failed(tmp_path):
    demo = _demo(tmp_path)
    old = time.time() - 3600
    for p in (demo / "export" / "manifest.json", demo / "search" / "sdk-float32.json",
              demo / "search" / "sdk-int8.json", demo / "bench" / "report.md"):
        os.utime(p, (old, old))
    (demo / demo_summary.START_STAMP).touch()
    os.utime(demo / demo_summary.START_STAMP, (old + 60, old + 60))
    for p in (demo / "data" / "manifest.csv", demo / "train" / "classical_contrastive" / "summary.json",
              demo / "report" / "10-training.md"):
        os.utime(p, None)
    stages = demo_summary.summarise(demo)
    assert [s.passed for s in stages] == [True, True, None, None, None]
    text = demo_summary.render(demo, stages, 2)
    assert "FAILED" in text.splitlines()[0] and "first failure: 3/5 export (exit status 2)" in text


def test_both_transfer_styles_are_summarised_beside_their_off_the_shelf_reference(tmp_path):
    demo = _demo(tmp_path)
    _write(demo / "train" / "offtheshelf" / "eval.json",
           json.dumps({"recall@1": 0.413, "transfer/pooled/recall@1": 0.48}))
    _write(demo / "train" / "offtheshelf-print" / "eval.json", json.dumps({"recall@1": 0.31}))
    _write(demo / "search" / "sdk-transfer.json", json.dumps({"recall@1": 0.66}))
    _write(demo / "search" / "sdk-transfer-print.json", json.dumps({"recall@1": 0.52}))
    text = demo_summary.render(demo, demo_summary.summarise(demo), 0)
    assert "real-image transfer R@1 66.0 (off-the-shelf 48.0)" in text
    assert "print-screen transfer R@1 52.0 (off-the-shelf 31.0)" in text
    assert "offtheshelf-print" not in text  # an eval-only reference is no training run
