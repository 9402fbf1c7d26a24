"""Device-runner converters on recorded sample outputs (hand-written in the tools' formats)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REPO_ROOT

from deepproduct.benchmarks.android_parser import (
    BenchmarkLogError,
    artefact_key_for,
    parse_benchmark_log,
    parse_getprop,
    records_from_dir,
)
from deepproduct.benchmarks.ios_parser import (
    ios_machine,
    parse_xctest_log,
    records_from_report_csv,
    records_from_xctest_log,
)
from deepproduct.benchmarks.schema import validate_record

ROOT = REPO_ROOT / "benchmarks"
ANDROID = ROOT / "android" / "samples" / "sample_phone"
IOS = ROOT / "ios" / "samples"


def test_android_sample_folder_converts_to_valid_records() -> None:
    records = records_from_dir(ANDROID, run_id="r1")
    for r in records:
        validate_record(r)
    latency = {(r["artefact"], r["delegate"], r["threads"]): r for r in records if r["kind"] == "latency"}
    assert set(latency) == {("tflite/fp32", "xnnpack", 1), ("tflite/fp32", "xnnpack", 4),
                            ("tflite/int8", "xnnpack", 1), ("tflite/int8", "xnnpack", 4), ("tflite/fp32", "gpu", 1)}
    r = latency[("tflite/fp32", "xnnpack", 4)]
    assert r["source"] == "android" and r["runtime"] == "tflite-benchmark_model/xnnpack"
    assert (r["runs"], r["warmup"]) == (50, 51)
    assert r["min_ms"] == pytest.approx(9.051) and r["mean_ms"] == pytest.approx(9.3987)
    assert r["max_ms"] == pytest.approx(10.954) and r["std_ms"] == pytest.approx(0.301)
    assert r["median_ms"] is None and r["p90_ms"] is None  # the tool prints no median
    assert r["init_ms"] == pytest.approx(39.81) and r["first_inference_ms"] == pytest.approx(12.833)
    assert r["memory_mb"] == {"init": 31.5, "overall": 40.9844} and r["model_size_mb"] == 14.1
    assert r["machine"]["kind"] == "android" and r["machine"]["soc"] == "SAMPLE-SoC"
    assert "Android 14" in r["machine"]["os"]
    skipped = [r for r in records if r["kind"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["artefact"] == "tflite/int8"
    assert "Failed to apply NNAPI delegate" in skipped[0]["reason"]


def test_benchmark_log_stat_variants() -> None:
    run = parse_benchmark_log("INFO: Num threads: [2]\nINFO: Graph: [/x/model_int8.tflite]\n"
                              "INFO: count=10 curr=1500(all same)\n")
    assert run.threads == 2 and run.delegate == "xnnpack" and run.warmup is None
    assert (run.inference.count, run.inference.min, run.inference.avg, run.inference.std) == (10, 1500, 1500, 0)
    run = parse_benchmark_log("count=3 first=10 curr=12 min=10 max=14 avg=12 std=1.63299\n"
                              "count=5 first=9 curr=9 min=8 max=11 avg=9.4 std=1.0198\n"
                              "Use xnnpack: [0]\n")
    assert run.warmup.count == 3 and run.inference.count == 5 and run.delegate == "cpu"
    with pytest.raises(BenchmarkLogError, match="Failed to load model"):
        parse_benchmark_log("INFO: STARTING!\nERROR: Failed to load model from /nope.tflite\n")


def test_android_helpers() -> None:
    assert artefact_key_for("/data/local/tmp/model_int8.tflite") == ("tflite/int8", "int8")
    assert artefact_key_for("model_fp32") == ("tflite/fp32", "fp32")
    m = parse_getprop("[ro.product.model]: [Pixel 8]\n[ro.board.platform]: [zuma]\n")
    assert m["device_model"] == "Pixel 8" and m["soc"] == "zuma"


def test_xctest_log_converts_time_metrics_only() -> None:
    measured = parse_xctest_log((IOS / "xctest_latency.log").read_text())
    assert [m["test"] for m in measured] == ["testLatency_fp16_all", "testLatency_fp16_cpuOnly",
                                             "testLatency_int8_all", "testLatency_fp32_cpuOnly", "testSearchSpeed"]
    assert len(measured[0]["values_ms"]) == 50 and measured[3]["values_ms"][0] > 1.0  # seconds -> ms
    machine = ios_machine("iPhone SAMPLE", "17.5", "A-sample")
    records = records_from_xctest_log(IOS / "xctest_latency.log", machine, run_id="r2")
    for r in records:
        validate_record(r)
    keys = [(r["artefact"], r["compute_units"]) for r in records]
    assert keys == [("coreml/fp16", "all"), ("coreml/fp16", "cpuOnly"), ("coreml/int8", "all"),
                    ("coreml/fp32", "cpuOnly")]  # testSearchSpeed is not a latency test
    r = records[0]
    assert r["source"] == "ios" and r["runs"] == 50 and r["threads"] == 0
    assert r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
    assert 2.0 < r["median_ms"] < 4.5  # 0.003 s in the sample


def test_xcode_report_csv() -> None:
    records = records_from_report_csv(IOS / "xcode_performance_report.csv", ios_machine("iPhone SAMPLE", "17.5"))
    for r in records:
        validate_record(r)
    assert [(r["artefact"], r["runtime"], r["median_ms"]) for r in records] == [
        ("coreml/fp16", "coreml/all", 3.05), ("coreml/fp16", "coreml/cpuOnly", 11.62),
        ("coreml/int8", "coreml/all", 2.88)]
    assert records[0]["load_ms"] == 48.2 and records[0]["p90_ms"] is None


def test_xctest_unknown_unit_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("Test Case '-[S testLatency_fp16_all]' measured [Time, fortnights] average: 1.0, "
                   "relative standard deviation: 1.0%, values: [1.0, 1.0]\n")
    with pytest.raises(ValueError, match="fortnights"):
        parse_xctest_log(log.read_text())
