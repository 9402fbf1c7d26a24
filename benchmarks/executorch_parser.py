"""ExecuTorch ``executor_runner`` logs (benchmarks/android/run_executor_runner.sh) -> records.

``executor_runner`` (examples/portable/executor_runner/executor_runner.cpp in ExecuTorch, built
with ``-DEXECUTORCH_BUILD_XNNPACK=ON -DEXECUTORCH_ENABLE_LOGGING=ON``) reports through
``ET_LOG``: on Android to logcat under the tag ``ExecuTorch``, elsewhere to stderr as
``I 00:00:00.012345 executorch:executor_runner.cpp:626] ...``. The lines we read::

    Resetting threadpool with num threads = 4
    Model file /data/local/tmp/deepproduct/model_int8.pte is loaded.
    Model loaded in 31.200000 ms.
    Iteration 1 of 50: 9.812000 ms
    ...
    Model executed successfully 50 time(s) in 493.100000 ms.

Each ``Iteration`` line is one timed ``execute()`` (the runner script warms up in a separate,
discarded invocation), so unlike TFLite's ``benchmark_model`` the median and p90 are known.
No phone is reachable from this project's machines: the parser is tested on logs written in
exactly these formats (benchmarks/android/samples/executorch_phone/), not on a phone's output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .android_parser import BenchmarkLogError, runner_records
from .schema import make_record

_ITER = re.compile(r"Iteration (?P<i>\d+) of (?P<n>\d+): (?P<ms>[\d.e+-]+) ms")
_TOTAL = re.compile(r"Model executed successfully (?P<n>\d+) time\(s\) in (?P<ms>[\d.e+-]+) ms")
_LOAD = re.compile(r"Model loaded in (?P<ms>[\d.e+-]+) ms")
_THREADS = re.compile(r"Resetting threadpool with num threads = (?P<n>-?\d+)")
_MODEL = re.compile(r"Model file (?P<path>\S+) is loaded")
_FAIL = re.compile(r"(failed with status 0x[0-9a-fA-F]+|Backend \w+ is not registered|error: .*)")
_PRECISION = re.compile(r"(fp32|fp16|int8)", re.IGNORECASE)


@dataclass
class ExecutorRunnerRun:
    """One ``executor_runner`` invocation: per-iteration times (ms) and the load time."""

    iterations_ms: list[float]
    total_ms: float | None = None
    executions: int | None = None
    load_ms: float | None = None
    threads: int | None = None
    model_path: str = ""
    problems: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        x = np.asarray(self.iterations_ms, dtype=np.float64)
        return {"median_ms": round(float(np.median(x)), 4), "p90_ms": round(float(np.percentile(x, 90)), 4),
                "min_ms": round(float(x.min()), 4), "max_ms": round(float(x.max()), 4),
                "mean_ms": round(float(x.mean()), 4), "std_ms": round(float(x.std()), 4)}


def parse_executor_runner_log(text: str) -> ExecutorRunnerRun:
    """Parse one run (logcat or stderr format); raises :class:`BenchmarkLogError` without timings."""
    run = ExecutorRunnerRun(iterations_ms=[])
    for line in text.splitlines():
        if m := _ITER.search(line):
            run.iterations_ms.append(float(m["ms"]))
        elif m := _TOTAL.search(line):
            run.executions, run.total_ms = int(m["n"]), float(m["ms"])
        elif m := _LOAD.search(line):
            run.load_ms = float(m["ms"])
        elif m := _THREADS.search(line):
            run.threads = int(m["n"])
        elif m := _MODEL.search(line):
            run.model_path = m["path"]
        elif m := _FAIL.search(line):
            run.problems.append(line.strip()[-200:])
    if not run.iterations_ms or run.total_ms is None:
        raise BenchmarkLogError("; ".join(run.problems[:3]) or
                                "no 'Iteration' / 'Model executed successfully' line (did the run finish?)")
    if run.executions != len(run.iterations_ms):
        raise BenchmarkLogError(f"{len(run.iterations_ms)} iteration lines but the runner reports "
                                f"{run.executions} executions (a truncated or mixed log)")
    return run


def artefact_key_for(path: str) -> tuple[str, str, str]:
    """``.../model_int8.pte`` -> ("executorch/int8", "executorch", "int8"): dp-export's file naming
    (``model_fp16.coreml.pte`` is the Core ML-delegated program)."""
    stem = Path(path).name.removesuffix(".pte")
    fmt = "executorch-coreml" if stem.endswith(".coreml") else "executorch"
    m = _PRECISION.search(stem)
    precision = m.group(1).lower() if m else "fp32"
    return f"{fmt}/{precision}", fmt, precision


def run_to_record(run: ExecutorRunnerRun, machine: dict[str, Any], run_id: str, log_name: str = "",
                  fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    fallback = fallback or {}
    graph = run.model_path or fallback.get("stem", "")
    key, fmt, precision = artefact_key_for(graph)
    threads = run.threads if run.threads and run.threads > 0 else int(fallback.get("threads", 1))
    delegate = "coreml" if fmt == "executorch-coreml" else "xnnpack"
    stats = run.stats()
    return make_record(
        "latency", machine=machine, run_id=run_id, source="android", artefact=key, format=fmt,
        precision=precision, runtime=f"executorch-executor_runner/{delegate}", delegate=delegate, threads=threads,
        batch=1, runs=len(run.iterations_ms), warmup=0, images_per_s=round(1e3 / stats["median_ms"], 2),
        init_ms=run.load_ms, graph=graph, log=log_name, **stats)


def records_from_dir(directory: str | os.PathLike, run_id: str | None = None) -> list[dict[str, Any]]:
    """All records of one run_executor_runner.sh output folder: ``device.txt`` + ``logs/*.log``."""
    return runner_records(directory, run_id, "executor_runner", parse_executor_runner_log, run_to_record,
                          lambda stem: artefact_key_for(stem)[0], machine_tool="executorch executor_runner")
