"""``dp-bench distributed``: one-process ``dp-search build`` vs ``--engine ray`` with 1 and N actors.

Why measured in one run: Ray's overhead (a private cluster's start, actor start-up, the shard
files, the merge) is a ratio of two throughputs on the same machine at the same moment; figures
from two sessions on a shared 2-core machine would mostly measure the neighbours. Every
configuration builds the same synthetic catalogue (JPEG photos made here, so no data set is
needed) with the same model, end to end: listing, embedding, merging, writing the index.

Records (docs/benchmarks.md): kind ``distributed_build``, one per configuration, each with the
``ratio_to_local`` of its images/s to the one-process build at equal cores (1 thread for 1 actor,
N threads for N actors).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepproduct.sdk.catalogue import catalogue_root, list_catalogue
from deepproduct.sdk.embedders import load_embedder
from deepproduct.sdk.search import build_catalogue_index

from .machine import describe_host
from .schema import make_record, new_run_id


def write_synthetic_catalogue(root: Path, images: int, size: int, seed: int = 0) -> Path:
    """``images`` JPEG "photos" (smooth colour fields plus noise, ``size`` px) in 8 per product folder."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(images):
        base = rng.uniform(0, 255, 3).astype(np.float32)
        tilt = rng.uniform(-80, 80, 3).astype(np.float32)
        arr = base + tilt * (xx[..., None] if i % 2 else yy[..., None]) + rng.normal(0, 12, (size, size, 3))
        folder = root / f"p{i // 8:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"img{i % 8}.jpg", quality=90)
    return root


def _local(model: str, images: Path, threads: int, fmt: str, precision: str, batch: int) -> float:
    start = time.perf_counter()
    entries = list_catalogue(images)
    embedder = load_embedder(model, format=fmt, precision=precision, threads=threads)
    index, _ = build_catalogue_index(entries, embedder, batch_size=batch, progress=False,
                                     info={"source": str(images), "image_root": str(catalogue_root(images))})
    index.save(images.parent / f"local-{threads}.dpindex")
    return time.perf_counter() - start


def _ray(model: str, images: Path, actors: int, fmt: str, precision: str, batch: int, shard_size: int,
         address: str | None) -> tuple[float, Any]:
    from deepproduct.sdk.distributed.build import ray_build

    out = images.parent / f"ray-{actors}.dpindex"
    start = time.perf_counter()
    index, _, stats = ray_build(model=Path(model), images=images, split=None, domain=None, storage="float32",
                                skip_bad=False, batch_size=batch, fmt=fmt, precision=precision, progress=False,
                                out=out, address=address, workdir=images.parent / f"work-{actors}", resume=False,
                                shard_size=shard_size, actors=actors, threads_per_actor=1, worker_retries=0,
                                echo=lambda _line: None)
    index.save(out)
    return time.perf_counter() - start, stats


def bench_distributed(model: str, *, images: int = 3000, image_size: int = 256, actors: list[int] | None = None,
                      shard_size: int = 100, fmt: str = "onnx", precision: str = "fp32", batch: int = 32,
                      address: str | None = None, say: Any = print) -> list[dict[str, Any]]:
    """Records of the one-process build (1 and N threads) and of Ray with each actor count."""
    actors = actors or [1, 2]
    machine = describe_host()
    run_id = new_run_id()
    cores = os.cpu_count() or 1
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dp-bench-distributed-") as tmp:
        root = write_synthetic_catalogue(Path(tmp) / "catalogue", images, image_size)
        local_rate: dict[int, float] = {}
        for threads in sorted(set(actors)):
            wall = _local(model, root, threads, fmt, precision, batch)
            local_rate[threads] = images / wall
            say(f"  local  threads {threads}: {images} images in {wall:6.2f} s = {local_rate[threads]:7.1f} img/s")
            records.append(make_record(
                "distributed_build", machine=machine, run_id=run_id, engine="local", actors=0, threads=threads,
                images=images, shards=0, wall_s=wall, images_per_s=local_rate[threads], images_per_s_per_actor=None,
                ratio_to_local=1.0, cores=cores, load_avg_1m=os.getloadavg()[0], image_size=image_size,
                model=Path(model).name, format=fmt, precision=precision))
        for n in actors:
            wall, stats = _ray(model, root, n, fmt, precision, batch, shard_size, address)
            rate = images / wall
            ratio = rate / local_rate[n]
            say(f"  ray    actors  {n}: {images} images in {wall:6.2f} s = {rate:7.1f} img/s "
                f"(x{ratio:.2f} of one process with {n} thread(s); "
                f"{stats.images_per_s_per_actor or 0:.1f} img/s per actor inside its shards)")
            records.append(make_record(
                "distributed_build", machine=machine, run_id=run_id, engine="ray", actors=n, threads=1,
                images=images, shards=stats.shards, wall_s=wall, images_per_s=rate,
                images_per_s_per_actor=stats.images_per_s_per_actor, ratio_to_local=ratio, cores=cores,
                load_avg_1m=os.getloadavg()[0], image_size=image_size, model=Path(model).name, format=fmt,
                precision=precision, shard_size=shard_size))
    return records


__all__ = ["bench_distributed", "write_synthetic_catalogue"]
