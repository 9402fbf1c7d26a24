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


def _paired(label: str, source: str, size: int, hits: str, backbone: str = "efficientnet_lite0") -> dict:
    return {"kind": "paired_recall", "label": label, "source": source, "size": size, "backbone": backbone,
            "queries": len(hits), "recall@1": hits.count("1") / len(hits), "hits": hits}


def _latency(size: int, artefact: str, ms: float, stamp: str = "2026-12-06T00:00:00Z") -> dict:
    """A valid dp-bench latency record (the study reads host.jsonl through the validating reader)."""
    from deepproduct.benchmarks.schema import make_record

    fmt, precision = artefact.split("/")
    rec = make_record("latency", machine={"kind": "host"}, run_id="t", artefact=artefact, format=fmt,
                      precision=precision, runtime="r", threads=1, batch=1, runs=5, warmup=1, median_ms=ms,
                      p90_ms=ms, min_ms=ms, mean_ms=ms, images_per_s=1000 / ms, backbone="efficientnet_lite0",
                      input_size=size)
    return {**rec, "timestamp": stamp}


def test_study_joins_seeds_styles_and_latency_by_hand(tmp_path):
    """Two seeds of a config at 224 against off-the-shelf at 224 (hand-computed means, sds and
    gains); latency: the newest 1-thread batch-1 record per artefact wins, others are ignored."""
    from deepproduct.benchmarks.pareto import study_points, study_table

    phone = [_paired("ots224", "offtheshelf", 224, "1000"), _paired("s0-fix224", "a.safetensors", 224, "1100"),
             _paired("s1-fix224", "b.safetensors", 224, "1110")]
    (tmp_path / "phone.jsonl").write_text("".join(json.dumps(r) + "\n" for r in phone))
    lat = [_latency(224, "onnx/int8", 9.0, "2026-12-01T00:00:00Z"), _latency(224, "onnx/int8", 7.0),
           {**_latency(224, "onnx/int8", 1.0), "threads": 2}, _latency(224, "tflite/int8", 8.0)]
    (tmp_path / "host.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lat))
    points = {p["config"]: p for p in study_points({"phone": tmp_path / "phone.jsonl"}, tmp_path / "host.jsonl")}
    fix = points["fix224"]["styles"]["phone"]
    assert fix["seeds"] == 2 and fix["recall@1"] == pytest.approx(0.625)
    assert fix["recall@1_sd"] == pytest.approx(0.1767767, rel=1e-5)  # sd of (0.5, 0.75), ddof 1
    assert fix["gain_vs_offtheshelf"] == pytest.approx(0.375) and fix["gain_sd"] == pytest.approx(0.1767767, rel=1e-5)
    assert points["fix224"]["latency_ms"] == {"onnx/int8": 7.0, "tflite/int8": 8.0, "executorch/int8": None}
    assert points["ots224"]["offtheshelf"] and points["ots224"]["styles"]["phone"]["gain_vs_offtheshelf"] is None
    table = study_table(list(points.values()), default="fix224")
    assert "**fix224** (default)" in table and "62.5 ± 17.7 (+37.5 ± 17.7) [2]" in table


def test_study_cli_writes_plot_table_and_refuses_bad_input(tmp_path):
    recs = [_paired("ots160", "offtheshelf", 160, "1000"), _paired("ship160", "c.safetensors", 160, "1100"),
            _paired("ots224", "offtheshelf", 224, "1100"), _paired("fix224", "d.safetensors", 224, "1110")]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "host.jsonl").write_text("".join(json.dumps(_latency(s, "onnx/int8", ms)) + "\n"
                                                 for s, ms in ((160, 4.0), (224, 7.0))))
    args = ["pareto", "--recall", f"phone={tmp_path / 'p.jsonl'}", "--latency", str(tmp_path / "host.jsonl"),
            "--default", "fix224", "--plot", str(tmp_path / "s.png"), "--table", str(tmp_path / "s.json")]
    res = CliRunner().invoke(dp_bench, args)
    assert res.exit_code == 0, res.output
    assert "phone: ship160, fix224" in res.output  # both on the trained front (faster / better)
    assert json.loads((tmp_path / "s.json").read_text())["fronts"] == {"phone": ["ship160", "fix224"]}
    assert (tmp_path / "s.md").read_text().startswith("<!-- written by DeepProduct")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert CliRunner().invoke(dp_bench, args).exit_code == 0  # re-running replaces its own outputs
    host = (tmp_path / "host.jsonl").read_bytes()  # an output aimed at an input (the optional --transfer
    for flag in ("--plot", "--table"):           # leaves the CLI matrix no required input): refused, untouched
        i = args.index(flag) + 1
        aimed = CliRunner().invoke(dp_bench, [*args[:i], str(tmp_path / "host.jsonl"), *args[i + 1:]])
        assert aimed.exit_code == 3 and (tmp_path / "host.jsonl").read_bytes() == host, aimed.output
    bad = CliRunner().invoke(dp_bench, ["pareto", "--recall", "phone", "--latency", str(tmp_path / "host.jsonl")])
    assert bad.exit_code == 2 and "STYLE=FILE" in bad.output
    (tmp_path / "junk.jsonl").write_text("{not json\n")
    junk = CliRunner().invoke(dp_bench, [*args[:2], f"phone={tmp_path / 'junk.jsonl'}", *args[3:]])
    assert junk.exit_code == 1 and "junk.jsonl:1: not JSON" in junk.output
