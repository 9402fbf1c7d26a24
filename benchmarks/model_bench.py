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
from tqdm import tqdm

from .machine import describe_host, usable_cores
from .model_stats import model_counts, size_on_disk
from .runners import ArtefactRef, NotRunnableHere, discover_artefacts, make_runner
from .schema import make_record, new_run_id
from .timing import time_calls


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
                 only: Iterable[str] | None = None, run_id: str | None = None,
                 progress: bool = True) -> list[dict[str, Any]]:
    """All records of one ``dp-bench models`` run (size records first, then latency)."""
    run_id = run_id or new_run_id()
    threads = threads or parse_threads("1,2,N")
    manifest, refs = discover_artefacts(export_dir, checkpoint)
    refs = select(refs, only)
    onnx_files = sorted((r.path for r in refs if r.format == "onnx"), key=lambda p: "fp32" not in p.name)
    counts = model_counts(onnx_files, next((r.path for r in refs if r.format == "pytorch"), None))
    records = [
        make_record("model_size", machine=describe_host(), run_id=run_id, artefact=r.key, format=r.format,
                    precision=r.precision, file=Path(r.path).name, size_bytes=size_on_disk(r.path),
                    params=counts.params, macs=counts.macs, counts_source=counts.source,
                    model=manifest.model_name, backbone=manifest.backbone)
        for r in refs if Path(r.path).exists()
    ]
    size = manifest.input_size
    rng = np.random.default_rng(0)
    x1 = rng.random((1, 3, size, size), dtype=np.float32)
    xb = rng.random((throughput_batch, 3, size, size), dtype=np.float32)
    configs = [(r, t) for r in refs for t in threads]
    for ref, t in tqdm(configs, desc="dp-bench models", disable=not progress, unit="config"):
        common = {"artefact": ref.key, "format": ref.format, "precision": ref.precision,
                  "runtime": ref.runtime, "threads": t, "model": manifest.model_name,
                  "backbone": manifest.backbone, "input_size": size}
        try:
            runner = make_runner(ref, t)
        except NotRunnableHere as exc:
            if t == threads[0]:
                records.append(make_record("skipped", machine=describe_host(), run_id=run_id,
                                           artefact=ref.key, what="latency", reason=str(exc)))
            continue
        native = runner.prepare(x1)
        stats = time_calls(lambda: runner.infer(native), runs=runs, warmup=warmup,  # noqa: B023
                           budget_s=budget_s)
        records.append(make_record("latency", machine=describe_host(), run_id=run_id, batch=1,
                                   images_per_s=round(1e3 / stats.median_ms, 2), **common,
                                   **stats.as_fields()))
        if throughput_batch > 1 and throughput_runs > 0:
            try:
                native_b = runner.prepare(xb)
                runner.infer(native_b)
            except Exception as exc:  # a graph exported with a fixed batch of 1
                records.append(make_record("skipped", machine=describe_host(), run_id=run_id,
                                           artefact=ref.key, what=f"batch {throughput_batch} @ {t} threads",
                                           reason=f"{type(exc).__name__}: {str(exc)[:200]}"))
                continue
            stats_b = time_calls(lambda: runner.infer(native_b), runs=throughput_runs,  # noqa: B023
                                 warmup=1, budget_s=budget_s)
            records.append(make_record(
                "latency", machine=describe_host(), run_id=run_id, batch=throughput_batch,
                images_per_s=round(throughput_batch * 1e3 / stats_b.median_ms, 2), **common,
                **stats_b.as_fields()))
    return records
