"""The size / resolution trade-off command: the Pareto front (hand-checked), records, plot, and a
real measurement on a tiny transfer set."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from click.testing import CliRunner

from deepproduct.benchmarks.cli import main as dp_bench
from deepproduct.benchmarks.pareto import append_records, pareto_front, plot, read_records
from deepproduct.sdk.dataset_manifest import read_dataset_manifest, write_dataset_manifest


def test_front_is_the_undominated_points():
    # (latency, recall): b beats a on both; c is slower but better; d is dominated by c; e ties c's recall, slower.
    pts = [(10.0, 0.30), (8.0, 0.35), (20.0, 0.50), (25.0, 0.45), (30.0, 0.50)]
    assert pareto_front(pts) == [1, 2]
    assert pareto_front([(1.0, 0.1)]) == [0]
    assert sorted(pareto_front([(1.0, 0.2), (1.0, 0.2)])) == [0, 1]  # equal points dominate neither


def test_records_and_plot(tmp_path):
    recs = [{"type": "pareto", "backbone": "a", "input_size": s, "recall@1": r, "latency_ms": lat, "queries": 10}
            for s, r, lat in ((160, 0.3, 5.0), (224, 0.4, 9.0))]
    path = append_records(tmp_path / "p.jsonl", recs)
    assert read_records(path) == recs
    assert plot(recs, tmp_path / "p.png") == [0, 1]
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.jsonl").write_text('{"type": "pareto", "backbone": "a"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: pareto record lacks input_size, latency_ms, recall@1"):
        read_records(tmp_path / "bad.jsonl")
    (tmp_path / "junk.jsonl").write_text("not json\n")
    with pytest.raises(ValueError, match="junk.jsonl:1: not JSON"):
        read_records(tmp_path / "junk.jsonl")


def test_measure_on_a_tiny_transfer_set(tiny_manifest, tmp_path):
    m = read_dataset_manifest(tiny_manifest)
    transfer = write_dataset_manifest(
        [dataclasses.replace(r, product_id=f"tr-{r.product_id}", path=os.path.relpath(m.abspath(r), tmp_path))
         for r in m.select(split="test")], tmp_path / "transfer.csv")
    out = tmp_path / "pareto.jsonl"
    res = CliRunner().invoke(dp_bench, ["pareto", "--transfer", str(transfer), "--backbones", "tiny_cnn",
                                        "--sizes", "64,96", "--runs", "3", "--out", str(out),
                                        "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["backbone"], r["input_size"]) for r in recs] == [("tiny_cnn", 64), ("tiny_cnn", 96)]
    assert all(0.0 <= r["recall@1"] <= r["recall@10"] <= 1.0 and r["latency_ms"] > 0 for r in recs)
    assert recs[0]["features"] == "off-the-shelf pooled" and recs[0]["queries"] > 0
    assert "Pareto front" in res.output
