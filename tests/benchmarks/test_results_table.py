"""The README's results table is generated: collected from a demo folder, rendered from the committed
record, and the README must agree with docs/results/current.json."""

from __future__ import annotations

import json

import pytest
from support import REPO_ROOT

from deepproduct.benchmarks import results_table


def _write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")


def test_collect_then_render_carries_the_figures(tmp_path):
    demo = tmp_path / "demo"
    _write(demo / "search" / "sdk-float32.json", {"recall@1": 0.875, "queries": 368.0, "unmatched_queries": 0.0})
    _write(demo / "search" / "sdk-int8.json", {"recall@1": 0.878})
    _write(demo / "search" / "sdk-transfer.json", {"recall@1": 0.598, "queries": 600.0, "unmatched_queries": 0.0})
    _write(demo / "search" / "sdk-transfer-print.json", {"recall@1": 0.52})
    _write(demo / "train" / "offtheshelf" / "eval.json", {"recall@1": 0.413, "transfer/pooled/recall@1": 0.398})
    _write(demo / "train" / "offtheshelf-print" / "eval.json", {"recall@1": 0.301})
    _write(demo / "export" / "manifest.json", {"model": {"name": "m", "backbone": "efficientnet_lite0"},
                                               "artefacts": [{"format": "onnx", "precision": "int8",
                                                              "parity": [{"cosine_mean": 0.99731}]}]})
    rows = [{"kind": "latency", "threads": 1, "batch": 1, "artefact": "onnx/fp32", "median_ms": 5.0},
            {"kind": "latency", "threads": 1, "batch": 1, "artefact": "onnx/int8", "median_ms": 2.5}]
    _write(demo / "bench" / "host.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    doc = results_table.collect(demo, repo=REPO_ROOT)
    assert doc["figures"]["heldout"]["sdk_fp32"] == {"recall@1": 0.875, "queries": 368}
    assert doc["figures"]["int8_speedup_1_thread"] == {"onnx": 2.0}
    text = results_table.render(json.loads(json.dumps(doc)))
    assert "| procedural held-out split (368 q) | 87.5 | 41.3 | +46.2 |" in text
    assert "| real-image transfer, phone style (600 q) | 59.8 | 39.8 | +20.0 |" in text
    assert "| real-image transfer, print/screen style | 52.0 | 30.1 | +21.9 |" in text
    assert "onnx 0.9973" in text and "onnx 2.00x" in text


def test_replace_block_needs_the_markers():
    with pytest.raises(ValueError, match="results:begin"):
        results_table.replace_block("no block here", "x")
    text = f"a\n{results_table.BEGIN}\nold\n{results_table.END}\nb\n"
    assert results_table.replace_block(text, "new") == f"a\n{results_table.BEGIN}\nnew\n{results_table.END}\nb\n"


def test_the_readme_table_agrees_with_current_json():
    """README figures are rendered, never typed: they must equal docs/results/current.json's."""
    current = json.loads((REPO_ROOT / "docs" / "results" / "current.json").read_text(encoding="utf-8"))
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert results_table.replace_block(readme, results_table.render(current)) == readme
