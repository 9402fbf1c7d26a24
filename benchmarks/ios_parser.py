"""Core ML latency from an iPhone -> records: XCTest ``measure`` output, or a hand-copied CSV.

XCTest prints one line per measured test (Xcode's console and ``xcodebuild test`` alike)::

    Test Case '-[DeepProductLatencyTests testLatency_fp16_all]' measured [Time, seconds] average: 0.004,
    relative standard deviation: 3.2%, values: [0.0041, 0.0039, ...], performanceMetricID:...

(one line in the log; ``XCTClockMetric`` prints ``[Clock Monotonic Time, s]`` instead). The
test method names carry the artefact and the compute units, ``testLatency_<precision>_<units>``
(benchmarks/ios/DeepProductLatencyTests.swift), and the values give a real median and p90.
Xcode's model performance report (Xcode 15+, open the .mlpackage -> Performance) has no
text export, so its figures are copied into a small CSV (``artefact,compute_units,median_ms,
load_ms,runs``) that :func:`records_from_report_csv` reads. No Mac is reachable from this
project's machines: both readers are tested on hand-written samples (benchmarks/ios/samples/).
"""

from __future__ import annotations

import csv
import os
import re
from typing import Any

import numpy as np

from deepproduct.sdk.fileio import read_text_input

from .schema import make_record, new_run_id
from .timing import summarise

_MEASURED = re.compile(
    r"Test Case '-\[(?P<suite>[\w.]+) (?P<test>\w+)\]' measured \[(?P<metric>[^,\]]+), (?P<unit>[^\]]+)\]\s*"
    r"average:\s*(?P<avg>[\d.e+-]+),\s*relative standard deviation:\s*(?P<rsd>[\d.e+-]+)%,\s*"
    r"values:\s*\[(?P<values>[^\]]*)\]")
_TEST_NAME = re.compile(r"^testLatency_(?P<precision>[A-Za-z0-9]+?)(?:_(?P<units>[A-Za-z0-9]+))?(?:_b(?P<batch>\d+))?$")
_UNIT_SCALE = {"seconds": 1e3, "s": 1e3, "milliseconds": 1.0, "ms": 1.0}
TIME_METRICS = ("Time", "Clock Monotonic Time")


def ios_machine(device: str, os_version: str, chip: str = "") -> dict[str, Any]:
    return {"kind": "ios", "device_model": device, "os": f"iOS {os_version}", "soc": chip,
            "tool": "XCTest measure"}


def parse_xctest_log(text: str) -> list[dict[str, Any]]:
    """Every time measurement in an XCTest log: suite, test, values in ms."""
    out = []
    for m in _MEASURED.finditer(text):
        if m["metric"].strip() not in TIME_METRICS:
            continue  # CPU / memory metrics: not latency
        scale = _UNIT_SCALE.get(m["unit"].strip().lower())
        if scale is None:
            raise ValueError(f"unknown XCTest unit {m['unit']!r} in {m['test']}")
        values = [float(v) * scale for v in m["values"].split(",") if v.strip()]
        out.append({"suite": m["suite"], "test": m["test"], "values_ms": values,
                    "average_ms": float(m["avg"]) * scale, "rsd_percent": float(m["rsd"])})
    return out


def records_from_xctest_log(path: str | os.PathLike, machine: dict[str, Any], run_id: str | None = None
                            ) -> list[dict[str, Any]]:
    """Latency records for each ``testLatency_*`` measurement (other measured tests are ignored)."""
    run_id = run_id or new_run_id()
    records = []
    for meas in parse_xctest_log(read_text_input(path, "XCTest log")):
        name = _TEST_NAME.match(meas["test"])
        if not name or not meas["values_ms"]:
            continue
        precision = name["precision"].lower()
        units = name["units"] or "all"
        batch = int(name["batch"] or 1)
        stats = summarise(meas["values_ms"])
        records.append(make_record(
            "latency", machine=machine, run_id=run_id, source="ios", artefact=f"coreml/{precision}",
            format="coreml", precision=precision, runtime=f"coreml/{units}", compute_units=units,
            threads=0, batch=batch, images_per_s=round(batch * 1e3 / stats.median_ms, 2),
            std_ms=round(float(np.std(meas["values_ms"])), 4), test=f"{meas['suite']}.{meas['test']}",
            **{k: v for k, v in stats.as_fields().items() if k != "std_ms"}))
    return records


def records_from_report_csv(path: str | os.PathLike, machine: dict[str, Any], run_id: str | None = None
                            ) -> list[dict[str, Any]]:
    """Figures copied from Xcode's Core ML performance report (median only; min/mean = median)."""
    run_id = run_id or new_run_id()
    records = []
    lines = read_text_input(path, "Core ML performance report").splitlines()  # regular files only, size-capped
    for row in csv.DictReader(line for line in lines if not line.startswith("#")):
        artefact = row["artefact"].strip()
        precision = artefact.split("/", 1)[-1]
        median = float(row["median_ms"])
        records.append(make_record(
            "latency", machine=machine, run_id=run_id, source="ios", artefact=artefact, format="coreml",
            precision=precision, runtime=f"coreml/{row.get('compute_units', 'all').strip()}",
            compute_units=row.get("compute_units", "all").strip(), threads=0, batch=1,
            runs=int(row.get("runs") or 0), warmup=0, median_ms=median, p90_ms=None, min_ms=median,
            mean_ms=median, images_per_s=round(1e3 / median, 2),
            load_ms=float(row["load_ms"]) if row.get("load_ms") else None,
            stat_note="Xcode performance report: median prediction time only"))
    return records
