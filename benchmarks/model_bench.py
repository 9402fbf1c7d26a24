"""``dp-bench models``: host latency, throughput, size, parameters and MACs of every artefact.

Protocol (docs/benchmarks.md): for each artefact and thread count, batch 1 with ``warmup``
untimed calls then ``runs`` individually timed calls (median, p90, min), then images/s at
batch 32 with fewer runs. Inputs are fixed-seed uniform [0, 1] tensors: latency of these
convolutional graphs does not depend on pixel values, and the inputs are then identical for
every runtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deepproduct.export.manifest import size_of
from deepproduct.training.progress import progress_bar  # tqdm on a terminal, a few lines in a log

from .machine import describe_host, usable_cores
from .model_stats import model_counts
from .runners import ArtefactRef, NotRunnableHere, discover_artefacts, make_runner
from .schema import make_record, new_run_id
from .timing import TimingStats, time_calls


def parse_threads(text: str, cores: int | None = None) -> list[int]:
    """``"1,2,N"`` -> ``[1, 2, cores]`` without duplicates, in the given order."""
    cores = cores or usable_cores()
    out: list[int] = []
    for token in (t.strip() for t in text.split(",") if t.strip()):
        value = cores if token.upper() == "N" else int(token)
        if value < 1:
            raise ValueError(f"thread counts must be positive, got {token!r}")
        if value not in out:
            out.append(value)
    return out


def select(refs: list[ArtefactRef], only: Iterable[str] | None) -> list[ArtefactRef]:
    """Artefacts whose key (``onnx/int8``) or format (``onnx``) is in ``only`` (all when None)."""
    wanted = {w.strip() for w in only or () if w.strip()}
    return [r for r in refs if not wanted or r.key in wanted or r.format in wanted]


def bench_models(export_dir: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
                 threads: list[int] | None = None, runs: int = 50, warmup: int = 10,
                 throughput_batch: int = 32, throughput_runs: int = 10, budget_s: float = 30.0,
                 rounds: int = 1, only: Iterable[str] | None = None, run_id: str | None = None,
                 progress: bool = True) -> list[dict[str, Any]]:
    """All records of one ``dp-bench models`` run (size records first, then latency).

    ``rounds`` > 1 repeats the whole protocol round-robin over the configurations and keeps, per
    configuration, the round with the lowest median (all round medians are recorded): on a shared
    machine a neighbour's burst then hits every artefact alike instead of one of them.
    """
    run_id = run_id or new_run_id()
    threads = threads or parse_threads("1,2,N")
    manifest, refs = discover_artefacts(export_dir, checkpoint)
    refs = select(refs, only)
    onnx_files = sorted((r.path for r in refs if r.format == "onnx"), key=lambda p: "fp32" not in p.name)
    counts = model_counts(onnx_files, next((r.path for r in refs if r.format == "pytorch"), None))
    records = [
        make_record("model_size", machine=describe_host(), run_id=run_id, artefact=r.key, format=r.format,
                    precision=r.precision, file=Path(r.path).name, size_bytes=size_of(Path(r.path)),
                    params=counts.params, macs=counts.macs, counts_source=counts.source,
                    model=manifest.model_name, backbone=manifest.backbone)
        for r in refs if Path(r.path).exists()
    ]
    size = manifest.input_size
    rng = np.random.default_rng(0)
    inputs = {1: rng.random((1, 3, size, size), dtype=np.float32)}
    if throughput_batch > 1 and throughput_runs > 0:
        inputs[throughput_batch] = rng.random((throughput_batch, 3, size, size), dtype=np.float32)
    runners: dict[tuple[str, int], Any] = {}  # None: not runnable here (recorded once as skipped)
    failed: set[tuple[str, int, int]] = set()  # e.g. batch 32 on a graph exported with batch 1
    medians: dict[tuple[str, int, int], list[float]] = {}
    best: dict[tuple[str, int, int], tuple[TimingStats, dict[str, Any]]] = {}
    configs = [(r, t, b) for r in refs for t in threads for b in inputs]
    bar = progress_bar(total=len(configs) * rounds, desc="dp-bench models", disable=not progress, unit="config")
    for _ in range(rounds):
        for ref, t, batch in configs:
            bar.update()
            if (ref.key, t) not in runners:
                runners[(ref.key, t)] = _runner_or_skip(ref, t, records, run_id, report=t == threads[0])
            runner = runners[(ref.key, t)]
            key = (ref.key, t, batch)
            if runner is None or key in failed:
                continue
            try:
                native = runner.prepare(inputs[batch])
                runner.infer(native)
            except Exception as exc:  # a graph exported with a fixed batch of 1
                records.append(make_record("skipped", machine=describe_host(), run_id=run_id, artefact=ref.key,
                                           what=f"batch {batch} @ {t} threads",
                                           reason=f"{type(exc).__name__}: {str(exc)[:200]}"))
                failed.add(key)
                continue
            stats = time_calls(lambda: runner.infer(native),  # noqa: B023
                               runs=runs if batch == 1 else throughput_runs,
                               warmup=warmup if batch == 1 else 1, budget_s=budget_s)
            medians.setdefault(key, []).append(stats.median_ms)
            if key not in best or stats.median_ms < best[key][0].median_ms:
                best[key] = (stats, describe_host())  # the machine record carries that round's load
    bar.close()
    for ref, t, batch in configs:
        if (ref.key, t, batch) not in best:
            continue
        stats, machine = best[(ref.key, t, batch)]
        records.append(make_record(
            "latency", machine=machine, run_id=run_id, artefact=ref.key, format=ref.format,
            precision=ref.precision, runtime=ref.runtime, threads=t, batch=batch,
            images_per_s=round(batch * 1e3 / stats.median_ms, 2), rounds=len(medians[(ref.key, t, batch)]),
            round_medians_ms=medians[(ref.key, t, batch)], model=manifest.model_name,
            backbone=manifest.backbone, input_size=size, **stats.as_fields()))
    return records


def _runner_or_skip(ref: ArtefactRef, threads: int, records: list[dict[str, Any]], run_id: str,
                    report: bool) -> Any:
    """The runner, or None with a ``skipped`` record (once per artefact) when it cannot run here."""
    try:
        return make_runner(ref, threads)
    except NotRunnableHere as exc:
        if report:
            records.append(make_record("skipped", machine=describe_host(), run_id=run_id, artefact=ref.key,
                                       what="latency", reason=str(exc)))
        return None
