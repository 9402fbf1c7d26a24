"""TensorFlow Lite ``benchmark_model`` logs (from benchmarks/android/run_benchmark_model.sh) -> records.

``benchmark_model`` prints, among other lines (TensorFlow's benchmark_model.cc and
stats_calculator.h)::

    INFO: Num threads: [4]
    INFO: Graph: [/data/local/tmp/deepproduct/model_fp32.tflite]
    INFO: Use xnnpack: [1]
    INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if ...
    INFO: count=24 first=25630 curr=20561 min=20412 max=25630 avg=20928.8 std=1046
    INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if ...
    INFO: count=50 first=20601 curr=20533 min=20380 max=21404 avg=20650.5 std=212
    INFO: Inference timings in us: Init: 35400, First inference: 25630, Warmup (avg): 20928.8, Inference (avg): 20650.5
    INFO: Memory footprint delta from the start of the tool (MB): init=29.6 overall=37.4

The first ``count=`` line is the warm-up, the second the timed runs (microseconds). The tool
reports no median or p90, so those stay null in our records and the report uses the mean
for device rows (and says so). No phone is reachable from this project's machines: the parser
is tested on hand-written samples in exactly this format (benchmarks/android/samples/).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepproduct.sdk.fileio import read_text_input

from .schema import make_record, new_run_id

_STAT = re.compile(r"count=(?P<count>\d+)(?:\s+first=(?P<first>[\d.]+))?\s+curr=(?P<curr>[\d.]+)"
                   r"(?:\(all same\)|\s+min=(?P<min>[\d.]+)\s+max=(?P<max>[\d.]+)\s+avg=(?P<avg>[\d.e+-]+)"
                   r"\s+std=(?P<std>[\d.e+-]+))?")
_TIMINGS = re.compile(r"Inference timings in us:\s*Init:\s*(?P<init>[\d.e+-]+),\s*First inference:\s*"
                      r"(?P<first>[\d.e+-]+),\s*Warmup \(avg\):\s*(?P<warm>[\d.e+-]+|nan),\s*"
                      r"Inference \(avg\):\s*(?P<avg>[\d.e+-]+)")
_PARAM = re.compile(r"^(?:[A-Z]+:\s*)?(?P<name>[#\w ()-]+?):\s*\[(?P<value>[^\]]*)\]\s*$")
_MEMORY = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\):"
                     r"\s*init=(?P<init>[\d.e+-]+)\s+overall=(?P<overall>[\d.e+-]+)")
_FILE_SIZE = re.compile(r"The input model file size \(MB\):\s*(?P<mb>[\d.e+-]+)")
#: A runner log's file name: <artefact stem>__t<threads>__<delegate>.log
LOG_NAME = re.compile(r"^(?P<stem>.+?)__t(?P<threads>\d+)__(?P<delegate>\w+)$")
_PRECISION = re.compile(r"(fp32|fp16|int8|int16|palette\d*)", re.IGNORECASE)


class BenchmarkLogError(ValueError):
    """A log without the timing lines (the run failed); the message quotes the tool's error."""


@dataclass(frozen=True)
class RunStat:
    """One ``count=...`` line, in microseconds (``min == max == curr`` when all were the same)."""

    count: int
    first: float | None
    curr: float
    min: float
    max: float
    avg: float
    std: float


@dataclass
class BenchmarkModelRun:
    params: dict[str, str]
    inference: RunStat
    warmup: RunStat | None = None
    init_us: float | None = None
    first_inference_us: float | None = None
    memory_mb: dict[str, float] = field(default_factory=dict)
    model_size_mb: float | None = None

    @property
    def graph(self) -> str:
        return self.params.get("Graph", "")

    @property
    def threads(self) -> int | None:
        value = self.params.get("Num threads") or self.params.get("#threads used for CPU inference")
        return int(value) if value and value.lstrip("-").isdigit() else None

    @property
    def delegate(self) -> str:
        if self.params.get("Use gpu") == "1":
            return "gpu"
        if self.params.get("Use NNAPI", self.params.get("Use nnapi")) == "1":
            return "nnapi"
        if self.params.get("Use xnnpack") == "0":
            return "cpu"
        return "xnnpack"  # the tool's default CPU path since TF 2.x


def _stat(m: re.Match) -> RunStat:
    curr = float(m["curr"])
    if m["min"] is None:  # "count=N curr=X(all same)"
        return RunStat(int(m["count"]), curr, curr, curr, curr, curr, 0.0)
    return RunStat(int(m["count"]), float(m["first"]) if m["first"] else None, curr, float(m["min"]),
                   float(m["max"]), float(m["avg"]), float(m["std"]))


def parse_benchmark_log(text: str) -> BenchmarkModelRun:
    """Parse one ``benchmark_model`` run; raises :class:`BenchmarkLogError` if it has no timings."""
    params: dict[str, str] = {}
    stats: list[RunStat] = []
    timings = memory = size = None
    errors: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body = re.sub(r"^(INFO|WARN|WARNING|ERROR|VERBOSE):\s*", "", line)
        if line.startswith("ERROR") or "Failed" in line:
            errors.append(body)
        if (m := _STAT.search(body)) and body.startswith("count="):
            stats.append(_stat(m))
        elif m := _TIMINGS.search(body):
            timings = m
        elif m := _MEMORY.search(body):
            memory = m
        elif m := _FILE_SIZE.search(body):
            size = m
        elif m := _PARAM.match(body):
            params.setdefault(m["name"].strip(), m["value"].strip())
    if not stats:
        reason = "; ".join(errors[:3]) or "no 'count=' timing line (did the run finish?)"
        raise BenchmarkLogError(reason)
    run = BenchmarkModelRun(params=params, inference=stats[-1], warmup=stats[-2] if len(stats) > 1 else None)
    if timings:
        run.init_us = float(timings["init"])
        run.first_inference_us = float(timings["first"])
    if memory:
        run.memory_mb = {"init": float(memory["init"]), "overall": float(memory["overall"])}
    if size:
        run.model_size_mb = float(size["mb"])
    return run


def parse_getprop(text: str) -> dict[str, Any]:
    """The phone's description from ``adb shell getprop`` output (``[key]: [value]`` lines)."""
    props = dict(re.findall(r"^\[([^\]]+)\]:\s*\[([^\]]*)\]", text, flags=re.MULTILINE))
    return {
        "kind": "android",
        "device_model": props.get("ro.product.model", "unknown"),
        "manufacturer": props.get("ro.product.manufacturer", ""),
        "soc": props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware", ""),
        "os": f"Android {props.get('ro.build.version.release', '?')} (SDK {props.get('ro.build.version.sdk', '?')})",
        "abi": props.get("ro.product.cpu.abi", ""),
        "tool": "tflite benchmark_model",
    }


def artefact_key_for(graph: str) -> tuple[str, str]:
    """``.../model_int8.tflite`` -> ("tflite/int8", "int8"): dp-export's file naming."""
    m = _PRECISION.search(Path(graph).stem)
    precision = m.group(1).lower() if m else "fp32"
    return f"tflite/{precision}", precision


def run_to_record(run: BenchmarkModelRun, machine: dict[str, Any], run_id: str, log_name: str = "",
                  fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    fallback = fallback or {}
    graph = run.graph or fallback.get("stem", "")
    key, precision = artefact_key_for(graph)
    threads = run.threads or int(fallback.get("threads", 1))
    delegate = run.delegate if run.params else fallback.get("delegate", "xnnpack")
    inf = run.inference
    return make_record(
        "latency", machine=machine, run_id=run_id, source="android", artefact=key, format="tflite",
        precision=precision, runtime=f"tflite-benchmark_model/{delegate}", delegate=delegate, threads=threads,
        batch=1, runs=inf.count, warmup=run.warmup.count if run.warmup else 0, median_ms=None, p90_ms=None,
        min_ms=inf.min / 1e3, mean_ms=round(inf.avg / 1e3, 4), std_ms=round(inf.std / 1e3, 4),
        max_ms=inf.max / 1e3, images_per_s=round(1e6 / inf.avg, 2),
        init_ms=None if run.init_us is None else run.init_us / 1e3,
        first_inference_ms=None if run.first_inference_us is None else run.first_inference_us / 1e3,
        memory_mb=run.memory_mb or None, model_size_mb=run.model_size_mb, graph=graph, log=log_name)


def records_from_dir(directory: str | os.PathLike, run_id: str | None = None) -> list[dict[str, Any]]:
    """All records of one runner output folder: ``device.txt`` + ``logs/*.log``.

    A failed run (no timing lines) becomes a ``skipped`` record with the tool's error message.
    """
    return runner_records(directory, run_id, "benchmark_model", parse_benchmark_log, run_to_record,
                          lambda stem: artefact_key_for(stem)[0])


def runner_records(directory: str | os.PathLike, run_id: str | None, tool: str, parse: Callable[[str], Any],
                   to_record: Callable[..., dict[str, Any]], artefact_key: Callable[[str], str],
                   machine_tool: str | None = None) -> list[dict[str, Any]]:
    """The records of a phone runner's output folder (benchmark_model, executor_runner): the
    machine from ``device.txt``, one record per ``logs/*.log`` -- ``to_record(parse(text), machine,
    run_id, log name, name fields)``, or ``skipped`` with the tool's error where ``parse`` finds no
    timings."""
    directory = Path(directory)
    run_id = run_id or new_run_id()
    device = directory / "device.txt"
    machine = parse_getprop(device.read_text(encoding="utf-8")) if device.is_file() else {"kind": "android"}
    if machine_tool:
        machine["tool"] = machine_tool
    logs = sorted((directory / "logs").glob("*.log")) or sorted(directory.glob("*.log"))
    if not logs:
        raise FileNotFoundError(f"{directory}: no {tool} logs (*.log or logs/*.log)")
    records = []
    for log in logs:
        name = LOG_NAME.match(log.stem)
        fallback = name.groupdict() if name else {"stem": log.stem}
        try:
            run = parse(read_text_input(log, "benchmark log"))
        except BenchmarkLogError as exc:
            records.append(make_record("skipped", machine=machine, run_id=run_id, source="android",
                                       artefact=artefact_key(fallback.get("stem", log.stem)),
                                       what=f"{tool} {log.name}", reason=str(exc)))
            continue
        records.append(to_record(run, machine, run_id, log.name, fallback))
    return records
