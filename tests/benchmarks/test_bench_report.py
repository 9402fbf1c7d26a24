"""``dp-bench report`` from synthetic host records plus the device samples: files get written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from support import REPO_ROOT

from deepproduct.benchmarks.android_parser import records_from_dir
from deepproduct.benchmarks.cli import main
from deepproduct.benchmarks.ios_parser import ios_machine, records_from_xctest_log
from deepproduct.benchmarks.report import latest
from deepproduct.benchmarks.schema import make_record, write_records

ROOT = REPO_ROOT / "benchmarks"
HOST = {"kind": "host", "cpu_model": "Test CPU", "cores": 2, "hostname": "h", "load_avg_1m": 0.5,
        "libraries": {"numpy": "2"}}


def _latency(artefact: str, threads: int, median: float, batch: int = 1, machine: dict = HOST) -> dict:
    fmt, prec = artefact.split("/")
    return make_record("latency", machine=machine, run_id="r", artefact=artefact, format=fmt, precision=prec,
                       runtime=fmt, threads=threads, batch=batch, runs=50, warmup=10, median_ms=median,
                       p90_ms=median * 1.1, min_ms=median * 0.9, mean_ms=median, images_per_s=batch * 1e3 / median)


def _accuracy(artefact: str, r1: float, drop: float) -> dict:
    fmt, prec = artefact.split("/")
    return make_record("accuracy", machine=HOST, run_id="r", artefact=artefact, format=fmt, precision=prec,
                       runtime=fmt, **{"recall@1": r1, "recall@5": r1 + 0.1, "map@r": r1 - 0.1}, queries=100,
                       gallery=300, reference="pytorch/fp32", cosine_to_reference=0.999, min_cosine_to_reference=0.99,
                       recall1_drop_points=drop, flagged=drop > 1.0, protocol="consumer-to-shop", split="test")


def _search(impl: str, storage: str, n: int, batch: int, median: float) -> dict:
    item = 1 if storage == "int8" else 4
    extra = {} if impl.startswith("faiss") else {"ratio_to_faiss": 1.2}
    return make_record("search", machine=HOST, run_id="r", impl=impl, storage=storage, gallery_size=n, dim=128,
                       batch=batch, k=10, threads=1, runs=5, median_ms=median, p90_ms=median, min_ms=median,
                       index_bytes=n * 128 * item, bytes_scanned=n * 128 * item, bandwidth_bound_ms=n * 128 * item / 1e7,
                       working_bytes=1000, overlap_at_k=0.99, **extra)


def synthetic_records() -> list[dict]:
    recs = [_latency("onnx/fp32", 1, 10.0), _latency("onnx/fp32", 2, 6.0), _latency("onnx/int8", 1, 8.0),
            _latency("onnx/int8", 2, 5.0), _latency("onnx/fp32", 2, 100.0, batch=32),
            _latency("tflite/fp32", 1, 9.0), _latency("pytorch/fp32", 1, 25.0),
            _accuracy("pytorch/fp32", 0.8, 0.0), _accuracy("onnx/fp32", 0.8, 0.0), _accuracy("onnx/int8", 0.77, 3.0),
            _accuracy("tflite/fp32", 0.8, 0.0),
            make_record("model_size", machine=HOST, run_id="r", artefact="onnx/int8", format="onnx", precision="int8",
                        file="model_int8.onnx", size_bytes=4_000_000, params=3_500_000, macs=400_000_000),
            make_record("bandwidth", machine=HOST, run_id="r", copy_gb_per_s=10.0, bytes=1, method="copy"),
            make_record("skipped", machine=HOST, run_id="r", artefact="coreml/fp16", what="latency",
                        reason="Core ML runs on Apple platforms only"),
            make_record("op_profile", machine=HOST, run_id="r", artefact="onnx/int8", threads=1, op_type="QLinearConv",
                        nodes=40, total_ms_per_run=5.0, share=0.6)]
    for n in (10_000, 100_000):
        for batch in (1, 64):
            recs += [_search("faiss-IndexFlatIP", "float32", n, batch, n / 1e4),
                     _search("faiss-IndexFlatIP-blas", "float32", n, batch, n / 2e4),
                     _search("sdk-GalleryIndex", "float32", n, batch, n / 8e3),
                     _search("sdk-GalleryIndex", "int8", n, batch, n / 9e3)]
    return recs


def test_report_and_plots_are_written(tmp_path: Path) -> None:
    host = write_records(tmp_path / "results" / "host.jsonl", synthetic_records())
    device = write_records(tmp_path / "results" / "devices.jsonl",
                           records_from_dir(ROOT / "android" / "samples" / "sample_phone")
                           + records_from_xctest_log(ROOT / "ios" / "samples" / "xctest_latency.log",
                                                     ios_machine("iPhone SAMPLE", "17.5")))
    out = tmp_path / "report" / "report.md"
    result = CliRunner().invoke(main, ["report", "--inputs", str(tmp_path / "results" / "*.jsonl"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for png in ("latency_vs_recall.png", "search_scaling.png"):
        assert (out.parent / png).stat().st_size > 1000
        assert f"]({png})" in text
    for section in ("## Machines", "## Summary (host)", "## int8 vs fp32", "## Accuracy retention",
                    "## Exact search vs faiss", "## Devices", "## ONNX Runtime per-op profile", "## Not measured here"):
        assert section in text
    assert "Test CPU, 2 cores" in text and "SAMPLE phone" in text and "iPhone SAMPLE" in text
    assert "⚠" in text  # onnx/int8 is 3 points below fp32
    assert "| onnx | 1 | 10.0 | 8.000 | 1.25x | no (see profile) |" in text
    assert "Failed to apply NNAPI delegate" in text
    # 100k, batch 64, int8: ours 11.1 ms, faiss 10.0 ms as shipped, 5.0 ms with BLAS forced
    assert "| 100,000 | 64 | 1 | SDK int8 | 11.1 | 10.0 | 1.11x ✓ | 5.000 | 2.22x ✗ |" in text
    # positional inputs work too (the shell's own glob expansion)
    result = CliRunner().invoke(main, ["report", str(host), str(device), "--out", str(tmp_path / "r2.md")])
    assert result.exit_code == 0, result.output


def test_latest_record_per_configuration_wins() -> None:
    old = _latency("onnx/fp32", 1, 10.0)
    new = {**_latency("onnx/fp32", 1, 7.0), "timestamp": "2999-01-01T00:00:00Z"}
    other = _latency("onnx/fp32", 2, 5.0)
    kept = latest([new, old, other])
    assert sorted(r["median_ms"] for r in kept) == [5.0, 7.0]


def test_report_refuses_missing_inputs(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "--inputs", str(tmp_path / "none*.jsonl"),
                                       "--out", str(tmp_path / "r.md")])
    assert result.exit_code != 0 and "no such input" in result.output


def test_a_pipe_or_line_break_in_a_record_field_stays_in_its_cell(tmp_path: Path) -> None:
    """A hostname with ``|`` (or a device name with a newline) must not add columns to a table."""
    odd = {**HOST, "hostname": "rack|7\nrow 2"}
    recs = [_latency("onnx/fp32", 1, 10.0, machine=odd), _latency("onnx/int8", 1, 8.0, machine=odd)]
    inputs = write_records(tmp_path / "host.jsonl", recs)
    out = tmp_path / "report.md"
    assert CliRunner().invoke(main, ["report", str(inputs), "--out", str(out)]).exit_code == 0
    text = out.read_text()
    assert "rack\\|7 row 2" in text
    for table in text.split("\n\n"):
        rows = [line for line in table.splitlines() if line.startswith("|")]
        widths = {line.replace("\\|", "").count("|") for line in rows}
        assert len(widths) <= 1, table
