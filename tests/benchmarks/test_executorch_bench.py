"""executor_runner logs (Android logcat and host stderr formats) -> latency records."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from support import REPO_ROOT

from deepproduct.benchmarks.android_parser import BenchmarkLogError
from deepproduct.benchmarks.cli import main
from deepproduct.benchmarks.executorch_parser import (
    artefact_key_for,
    parse_executor_runner_log,
    records_from_dir,
)
from deepproduct.benchmarks.schema import read_records

SAMPLES = REPO_ROOT / "benchmarks" / "android" / "samples" / "executorch_phone"

# executor_runner built for the host writes ET_LOG lines to stderr in runtime/platform/default/posix.cpp's format.
STDERR_LOG = """\
I 00:00:00.000412 executorch:executor_runner.cpp:341] Resetting threadpool with num threads = 2
I 00:00:00.004020 executorch:executor_runner.cpp:476] Model file model_fp32.pte is loaded.
I 00:00:00.004031 executorch:executor_runner.cpp:486] Using method forward
I 00:00:00.019000 executorch:executor_runner.cpp:626] Model loaded in 14.500000 ms.
I 00:00:00.031000 executorch:executor_runner.cpp:781] Iteration 1 of 3: 12.000000 ms
I 00:00:00.041000 executorch:executor_runner.cpp:781] Iteration 2 of 3: 10.000000 ms
I 00:00:00.052000 executorch:executor_runner.cpp:781] Iteration 3 of 3: 11.000000 ms
I 00:00:00.052100 executorch:executor_runner.cpp:791] Model executed successfully 3 time(s) in 33.000000 ms.
"""


def test_stderr_format():
    run = parse_executor_runner_log(STDERR_LOG)
    assert run.iterations_ms == [12.0, 10.0, 11.0] and run.total_ms == 33.0 and run.executions == 3
    assert run.load_ms == 14.5 and run.threads == 2 and run.model_path == "model_fp32.pte"
    assert run.stats()["median_ms"] == 11.0 and run.stats()["min_ms"] == 10.0


def test_truncated_or_failed_logs_are_errors():
    with pytest.raises(BenchmarkLogError, match="iteration lines but the runner reports"):
        parse_executor_runner_log(STDERR_LOG.replace("Iteration 2 of 3: 10.000000 ms", ""))
    with pytest.raises(BenchmarkLogError, match="Backend CoreMLBackend is not registered"):
        parse_executor_runner_log((SAMPLES / "logs" / "model_fp16.coreml__t1__xnnpack.log").read_text())


def test_file_names_map_to_artefacts():
    assert artefact_key_for("/data/local/tmp/deepproduct/model_int8.pte") == ("executorch/int8", "executorch", "int8")
    assert artefact_key_for("model_fp16.coreml.pte") == ("executorch-coreml/fp16", "executorch-coreml", "fp16")


def test_sample_phone_folder_to_records(tmp_path):
    records = records_from_dir(SAMPLES)
    latency = {(r["artefact"], r["threads"]): r for r in records if r["kind"] == "latency"}
    assert set(latency) == {("executorch/fp32", 1), ("executorch/fp32", 4), ("executorch/int8", 1),
                            ("executorch/int8", 4)}
    r = latency[("executorch/int8", 4)]
    assert r["source"] == "android" and r["runs"] == 20 and r["runtime"] == "executorch-executor_runner/xnnpack"
    assert r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["max_ms"]
    assert r["machine"]["tool"] == "executorch executor_runner" and r["machine"]["abi"] == "arm64-v8a"
    assert latency[("executorch/int8", 1)]["median_ms"] > latency[("executorch/int8", 4)]["median_ms"]
    skipped = [r for r in records if r["kind"] == "skipped"]
    assert [s["artefact"] for s in skipped] == ["executorch-coreml/fp16"]
    # and through the CLI, into validated JSON lines
    copy = tmp_path / "run"
    shutil.copytree(SAMPLES, copy)
    out = tmp_path / "records.jsonl"
    result = CliRunner().invoke(main, ["import-executorch", str(copy), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len([r for r in read_records([out]) if r["kind"] == "latency"]) == 4
