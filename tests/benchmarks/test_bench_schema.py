"""The benchmark record schema: required fields, types, versions, JSON-lines round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deepproduct.benchmarks.machine import cpu_flags, cpu_model, describe_host
from deepproduct.benchmarks.schema import (
    KIND_FIELDS,
    SCHEMA_VERSION,
    RecordError,
    make_record,
    read_records,
    validate_record,
    write_records,
)
from deepproduct.benchmarks.timing import summarise, time_calls

LATENCY = dict(artefact="onnx/fp32", format="onnx", precision="fp32", runtime="onnxruntime", threads=1, batch=1,
               runs=3, warmup=1, median_ms=1.0, p90_ms=1.2, min_ms=0.9, mean_ms=1.05, images_per_s=1000.0)


def test_make_record_has_common_fields_and_machine() -> None:
    rec = make_record("latency", machine=describe_host(), run_id="r", **LATENCY)
    assert rec["schema_version"] == SCHEMA_VERSION and rec["source"] == "host"
    m = rec["machine"]
    assert m["cores"] >= 1 and m["cpu_model"] and "numpy" in m["libraries"] and "load_avg_1m" in m
    json.dumps(rec, allow_nan=False)


@pytest.mark.parametrize("kind", sorted(KIND_FIELDS))
def test_every_kind_rejects_a_missing_required_field(kind: str) -> None:
    first = next(iter(KIND_FIELDS[kind]))
    with pytest.raises(RecordError, match=re.escape(first)):
        make_record(kind, machine={}, run_id="r")


def test_types_versions_and_sources_are_checked() -> None:
    with pytest.raises(RecordError, match="threads"):
        make_record("latency", machine={}, run_id="r", **{**LATENCY, "threads": "1"})
    with pytest.raises(RecordError, match="threads"):
        make_record("latency", machine={}, run_id="r", **{**LATENCY, "threads": True})
    with pytest.raises(RecordError, match="source"):
        make_record("latency", machine={}, run_id="r", source="watch", **LATENCY)
    rec = make_record("latency", machine={}, run_id="r", **{**LATENCY, "median_ms": None, "p90_ms": None})
    with pytest.raises(RecordError, match="newer"):
        validate_record({**rec, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(RecordError, match="unknown record kind"):
        validate_record({**rec, "kind": "vibes"})


def test_jsonl_round_trip_and_bad_line_location(tmp_path: Path) -> None:
    recs = [make_record("latency", machine={"kind": "host"}, run_id="r", **LATENCY),
            make_record("bandwidth", machine={"kind": "host"}, run_id="r", copy_gb_per_s=10.0, bytes=1,
                        method="x")]
    path = write_records(tmp_path / "a" / "r.jsonl", recs)
    write_records(path, recs[:1])  # appends
    back = list(read_records([path]))
    assert len(back) == 3 and back[0] == recs[0]
    with open(path, "a") as f:
        f.write('{"schema_version": 1, "kind": "latency"}\n')
    with pytest.raises(RecordError, match=r"r\.jsonl:4"):
        list(read_records([path]))
    with pytest.raises(ValueError):
        write_records(tmp_path / "nan.jsonl", [{**recs[0], "median_ms": float("nan")}])


def test_timing_protocol() -> None:
    stats = summarise([3.0, 1.0, 2.0, 10.0], warmup=2)
    assert (stats.median_ms, stats.min_ms, stats.runs, stats.warmup) == (2.5, 1.0, 4, 2)
    assert stats.p90_ms == pytest.approx(7.9)
    calls = []
    stats = time_calls(lambda: calls.append(1), runs=5, warmup=2)
    assert len(calls) == 7 and stats.runs == 5
    stats = time_calls(lambda: calls.append(1), runs=1000, warmup=0, budget_s=0.0, min_runs=3)
    assert stats.runs == 3  # the budget stops it, but never below min_runs


def test_cpuinfo_parsing() -> None:
    info = "processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2 fma avx512f avx512_vnni\n"
    assert cpu_model(info) == "AMD EPYC 9B14"
    assert cpu_flags(info) == ["avx2", "fma", "avx512f", "avx512_vnni"]
    assert cpu_model("Hardware\t: Qualcomm\nFeatures\t: asimd asimddp\n") == "Qualcomm"
