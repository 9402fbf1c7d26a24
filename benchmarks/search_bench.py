"""``dp-bench search``: the SDK's exact search against faiss ``IndexFlatIP``, same data, same run.

For each gallery size the same unit vectors go into a float32 and an int8 ``GalleryIndex``
(the SDK's public API, ``search_arrays``) and into faiss; the same query batches are timed on
each, with the same thread count (SDK: BLAS threads; faiss: OpenMP threads). faiss is timed
twice: as shipped, and with its BLAS path forced (see ``FAISS_VARIANTS``), so a ratio against
a needlessly slow baseline is never the only one reported. Each record
carries the vector block's bytes, the bytes one batch scans and the memory-bandwidth bound
(bytes scanned / measured copy bandwidth), so a ratio to faiss and a ratio to the hardware's
floor can both be read off.

SDK implementations: ``sdk-GalleryIndex`` is the default (``backend="auto"``: the two-stage
SIMD scan when the fast-search extra is installed, else numpy) and ``sdk-GalleryIndex-numpy``
the always-available numpy fallback; ``bytes_scanned`` is what each actually streams (the int8
shadow for the accelerated float32 scan), ``stored_bound_ms`` the bound for the stored block.
``filter_share`` records time a metadata-filtered search over 10% of the gallery (sizes up to
``FILTER_MAX_SIZE``). ``cores=True`` also runs the JVM and JS cores' harnesses
(android_demo/core SearchBench, web_demo/bench/search_bench.mjs) on the same index files, one
thread, one query per call; their records carry ``agrees_with_sdk`` (query 0's top-k positions).

Data: clustered unit vectors (a Gaussian centre per ~100 items, plus noise), with queries that
are noisy copies of gallery items. Product embeddings cluster like this, and the SDK's running
top-K threshold prunes differently on clustered data than on isotropic noise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deepproduct.training.progress import progress_bar  # tqdm on a terminal, a few lines in a log

from .bandwidth import copy_bandwidth, scan_bound_ms
from .machine import describe_host
from .schema import make_record, new_run_id
from .timing import TimingStats, summarise

#: faiss as shipped, and with its BLAS path forced. Recent faiss (1.15 here) switches to BLAS only
#: when queries x dim >= distance_compute_blas_threshold (128000: 1000 queries at d = 128); below
#: that each query streams the whole gallery on its own, so a batch of 64 reads it 64 times.
FAISS_VARIANTS: tuple[tuple[str, int | None], ...] = (("faiss-IndexFlatIP", None), ("faiss-IndexFlatIP-blas", 0))
#: Filtered-search records (10% of the items) are taken up to this gallery size: the per-item
#: metadata dicts of a larger benchmark gallery would cost more memory than the vectors.
FILTER_MAX_SIZE = 200_000
FILTER_SHARDS = 10
REPO = Path(__file__).resolve().parent.parent


def clustered_unit_vectors(n: int, dim: int, seed: int = 0, per_cluster: int = 100,
                           noise: float = 0.6) -> np.ndarray:
    """``n`` float32 unit rows around ``n / per_cluster`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // per_cluster), dim), dtype=np.float32)
    out = np.empty((n, dim), np.float32)
    step = 1 << 16
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = centres[rng.integers(0, len(centres), stop - start)]
        block += noise * rng.standard_normal(block.shape, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def make_queries(gallery: np.ndarray, count: int, seed: int = 1, noise: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = gallery[rng.integers(0, len(gallery), count)] + noise * rng.standard_normal(
        (count, gallery.shape[1]), dtype=np.float32) / np.sqrt(gallery.shape[1])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def working_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes numpy allocates during one call (tracemalloc sees numpy's buffers, not BLAS's)."""
    tracemalloc.start()
    try:
        fn()
        return int(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def overlap_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-k (faiss on float32) that an implementation also returned."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True))
    return hits / truth.size


def _faiss_index(vectors: np.ndarray) -> Any:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def bench_search(sizes: list[int], *, dim: int = 128, batches: list[int] | None = None, k: int = 10,
                 threads: list[int] | None = None, storages: tuple[str, ...] = ("float32", "int8"),
                 runs: int = 20, warmup: int = 2, budget_s: float = 8.0, seed: int = 0,
                 bandwidth_bytes: int = 256 << 20, run_id: str | None = None,
                 progress: bool = True, cores: bool = False, core_runs: int = 30) -> list[dict[str, Any]]:
    """Bandwidth record, then one search record per impl x storage x size x batch x threads."""
    run_id = run_id or new_run_id()
    # The bandwidth is measured before and after every size and the best is the bound's basis: one
    # best-of-5 at the start was, on a shared host, sometimes taken during a neighbour's memory
    # burst (15 GB/s against 27.6 GB/s minutes apart; faiss then "beat" the bound at 1M).
    samples = [copy_bandwidth(bandwidth_bytes)]
    records: list[dict[str, Any]] = []
    for n in sizes:
        # One function call per size: its indexes are freed before the next (larger) size is built.
        records += _bench_size(n, dim, batches or [1, 64], k, threads or [1], storages, runs, warmup, budget_s,
                               seed, samples[0], run_id, progress, cores, core_runs)
        samples.append(copy_bandwidth(bandwidth_bytes))
    gbps = max(samples)
    for r in records:  # the bounds with the best measured bandwidth
        if r.get("bandwidth_bound_ms") is not None:
            r["bandwidth_bound_ms"] = round(scan_bound_ms(r["bytes_scanned"], gbps), 4)
        if r.get("stored_bound_ms") is not None:
            r["stored_bound_ms"] = round(r["stored_bound_ms"] * samples[0] / gbps, 4)
    bandwidth = make_record("bandwidth", machine=describe_host(), run_id=run_id, copy_gb_per_s=round(gbps, 3),
                            bytes=bandwidth_bytes, samples_gb_per_s=[round(x, 3) for x in samples],
                            method="numpy copyto float64, best of 5, read+write bytes; best of the run's samples")
    return [bandwidth, *records]


def _bench_size(n: int, dim: int, batches: list[int], k: int, threads: list[int], storages: tuple[str, ...],
                runs: int, warmup: int, budget_s: float, seed: int, gbps: float, run_id: str,
                progress: bool, cores: bool = False, core_runs: int = 30) -> list[dict[str, Any]]:
    import faiss

    from deepproduct.sdk.exact_search import resolve_backend
    from deepproduct.sdk.gallery_index import GalleryIndex

    data = clustered_unit_vectors(n, dim, seed)
    ids = np.arange(n).astype(str).tolist()
    meta = [{"shard": i % FILTER_SHARDS} for i in range(n)] if n <= FILTER_MAX_SIZE else None
    bar = progress_bar(total=len(storages) + 1, desc=f"build {n:,}", disable=not progress, leave=False)
    indexes = {}
    for storage in storages:
        indexes[storage] = GalleryIndex.from_embeddings(data, ids, meta, storage=storage)
        if resolve_backend(None, n) != "numpy":
            indexes[storage].coarse_codes()  # built once per index (like a load), not inside a timed call
        bar.update()
    # faiss gets exactly the SDK's (re-normalised) float32 rows when the SDK has them.
    gallery_f32 = np.ascontiguousarray(indexes["float32"].vectors) if "float32" in indexes else data
    del data, ids
    flat = _faiss_index(gallery_f32)
    bar.update()
    bar.close()
    records = []
    configs = [(b, t) for b in batches for t in threads]
    default_threshold = faiss.cvar.distance_compute_blas_threshold
    for batch, t in progress_bar(configs, desc=f"search {n:,}", disable=not progress, leave=False):
        queries = make_queries(gallery_f32, batch, seed + batch)
        faiss.omp_set_num_threads(t)
        base = {"gallery_size": n, "dim": dim, "batch": batch, "k": k, "threads": t,
                "data": "clustered-unit-gaussian"}
        faiss_bytes = n * dim * 4

        def faiss_call(threshold: int | None, queries: np.ndarray = queries) -> Any:
            faiss.cvar.distance_compute_blas_threshold = default_threshold if threshold is None else threshold
            try:
                return flat.search(queries, k)
            finally:
                faiss.cvar.distance_compute_blas_threshold = default_threshold

        _, truth = flat.search(queries, k)
        auto = resolve_backend(None, n)
        ours: list[tuple[str, str, Any, Callable[[], Any], dict[str, Any]]] = []
        for storage, index in indexes.items():
            for impl, backend in (("sdk-GalleryIndex", None), ("sdk-GalleryIndex-numpy", "numpy")):
                if backend is None and auto == "numpy":
                    continue  # "auto" is the numpy path here: the -numpy row says it all
                name = backend or auto
                coarse = name != "numpy" and batch <= _max_coarse_queries()
                extra = {"backend": name, "scan": "two-stage-int8" if coarse else "blocked-blas"}
                ours.append((impl, storage, index, lambda index=index, queries=queries, t=t, b=backend:
                             index.search_arrays(queries, k, threads=t, backend=b), extra))
                if meta is not None and batch == 1:
                    f = {"shard": 0}
                    ours.append((f"{impl}-filter10", storage, index, lambda index=index, queries=queries, t=t,
                                 b=backend, f=f: index.search_arrays(queries, k, f, threads=t, backend=b),
                                 {**extra, "filter_share": 1 / FILTER_SHARDS}))
        # Every implementation of this configuration timed round-robin in bursts (time_round_robin):
        # on a shared host a neighbour's load spike then slows all of them alike, so the ratios of
        # one run compare like with like (timed one after another, a spike hit whichever ran then).
        calls = [lambda th=threshold: faiss_call(th) for _, threshold in FAISS_VARIANTS] + [c[3] for c in ours]
        timed = time_round_robin(calls, runs, warmup, budget_s)
        faiss_ms = {}
        for (impl, threshold), stats in zip(FAISS_VARIANTS, timed, strict=False):
            faiss_ms[impl] = stats.median_ms
            records.append(make_record(
                "search", machine=describe_host(), run_id=run_id, impl=impl, storage="float32",
                index_bytes=faiss_bytes, bytes_scanned=faiss_bytes,
                bandwidth_bound_ms=round(scan_bound_ms(faiss_bytes, gbps), 4), working_bytes=None,
                overlap_at_k=1.0, blas_threshold=default_threshold if threshold is None else threshold,
                timing="round-robin", **base, **stats.as_fields()))
        for (impl, storage, index, call, extra), stats in zip(ours, timed[len(FAISS_VARIANTS):], strict=True):
            _, found = call()
            if "filter_share" in extra:  # faiss has no metadata filter: compare with the numpy path
                found_ref = indexes[storage].search_arrays(queries, k, {"shard": 0}, backend="numpy")[1]
                agree = overlap_at_k(found, found_ref)
            else:
                agree = overlap_at_k(found, truth)
            stored = int(index.vectors.nbytes)
            share = extra.get("filter_share", 1.0)
            scanned = (int(index.coarse_codes().nbytes) if extra.get("scan") == "two-stage-int8" else stored)
            scanned = int(scanned * share)
            records.append(make_record(
                "search", machine=describe_host(), run_id=run_id, impl=impl, storage=storage,
                index_bytes=stored + (0 if index.scales is None else int(index.scales.nbytes)),
                bytes_scanned=scanned, bandwidth_bound_ms=round(scan_bound_ms(scanned, gbps), 4),
                stored_bound_ms=round(scan_bound_ms(int(stored * share), gbps), 4),
                working_bytes=working_bytes(call), overlap_at_k=round(agree, 4), **extra,
                ratio_to_faiss=round(stats.median_ms / faiss_ms[FAISS_VARIANTS[0][0]], 3),
                ratio_to_best_faiss=round(stats.median_ms / min(faiss_ms.values()), 3), timing="round-robin",
                **base, **stats.as_fields()))
    if cores:
        records += bench_cores(indexes, gallery_f32, k, core_runs, seed, gbps, run_id)
    return records


def time_round_robin(calls: list[Callable[[], object]], runs: int, warmup: int, budget_s: float | None,
                     min_runs: int = 3, bursts: int = 6) -> list[TimingStats]:
    """``time_calls`` for several calls at once, interleaved in bursts: round r gives each call in
    turn one untimed call (its data back in cache) and then ``runs / bursts`` timed ones.

    Why bursts, not single calls in turn: alternating single calls would evict each other's
    galleries from the caches (a 10k gallery fits in L3), timing a cold cache that no
    deployment has; bursts keep each warm, while a neighbour's load spike still spreads over all.
    The budget is per call (``budget_s`` x the number of calls in all); every call gets the same
    number of timed runs.
    """
    for fn in calls:
        for _ in range(warmup):
            fn()
    samples: list[list[float]] = [[] for _ in calls]
    per_burst = max(1, -(-max(1, runs) // bursts))
    spent = 0.0
    while len(samples[0]) < max(1, runs):
        take = min(per_burst, max(1, runs) - len(samples[0]))
        for fn, out in zip(calls, samples, strict=True):
            fn()
            for _ in range(take):
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                out.append(dt * 1e3)
                spent += dt
        if budget_s is not None and spent >= budget_s * len(calls) and len(samples[0]) >= min_runs:
            break
    return [summarise(s, warmup) for s in samples]


def _max_coarse_queries() -> int:
    from deepproduct.sdk.exact_search import MAX_COARSE_QUERIES

    return MAX_COARSE_QUERIES


def bench_cores(indexes: dict[str, Any], gallery_f32: np.ndarray, k: int, runs: int, seed: int, gbps: float,
                run_id: str) -> list[dict[str, Any]]:
    """The JVM and JS cores' harnesses on the SDK's own index files, with the SDK's answer for query 0."""
    records = []
    with tempfile.TemporaryDirectory(prefix="dp-bench-cores-") as tmp:
        work = Path(tmp)
        queries = make_queries(gallery_f32, 16, seed + 101)
        qfile = work / "queries.f32"
        queries.astype("<f4").tofile(qfile)
        harnesses = [h for h in (_jvm_harness(work), _js_harness()) if h is not None]
        for storage, index in indexes.items():
            path = index.save(work / f"{storage}.dpindex")
            sdk = {"items": index.search_arrays(queries[:1], k)[1][0].tolist(),
                   "products": index.search_arrays(queries[:1], k, unique_products=True)[1][0].tolist()}
            for impl, cmd in harnesses:
                out = subprocess.run([*cmd, str(path), str(qfile), str(k), str(runs), str(max(20, runs))],
                                     capture_output=True, text=True, timeout=1800, check=False)
                if out.returncode != 0:
                    raise RuntimeError(f"{impl} search harness failed ({' '.join(cmd)}):\n{out.stderr[-2000:]}")
                for line in out.stdout.splitlines():
                    doc = json.loads(line)
                    scanned = int(index.vectors.nbytes)
                    records.append(make_record(
                        "search", machine=describe_host(), run_id=run_id,
                        impl=f"{impl}{'-products' if doc['mode'] == 'products' else ''}", storage=storage,
                        gallery_size=len(index), dim=index.dim, batch=1, k=k, threads=1, runs=int(doc["runs"]),
                        warmup=max(20, runs), median_ms=round(doc["median_ms"], 4),
                        p90_ms=round(doc["p90_ms"], 4), min_ms=round(doc["min_ms"], 4), index_bytes=scanned,
                        bytes_scanned=scanned, bandwidth_bound_ms=round(scan_bound_ms(scanned, gbps), 4),
                        data="clustered-unit-gaussian", agrees_with_sdk=doc["positions"] == sdk[doc["mode"]]))
    return records


def _jvm_harness(work: Path) -> tuple[str, list[str]] | None:
    """Compile the JVM core + its SearchBench (Java 8 level) into ``work``; None without a JDK."""
    core = REPO / "android_demo" / "core" / "src"
    if not shutil.which("javac") or not core.is_dir():
        return None
    out = work / "jvm"
    out.mkdir()
    sources = [str(p) for p in (core / "main" / "java").rglob("*.java")]
    sources.append(str(core / "test" / "java" / "com" / "deepproduct" / "core" / "SearchBench.java"))
    subprocess.run(["javac", "-nowarn", "-Xlint:-options", "--release", "8", "-encoding", "UTF-8", "-d", str(out),
                    *sources], check=True, capture_output=True, text=True)
    # The scan runs on the calling thread only (the JIT and GC have their own, as on a phone).
    return "jvm-core", ["java", "-Xss4m", "-cp", str(out), "com.deepproduct.core.SearchBench"]


def _js_harness() -> tuple[str, list[str]] | None:
    script = REPO / "web_demo" / "bench" / "search_bench.mjs"
    if not shutil.which("node") or not script.is_file():
        return None
    return "js-core", ["node", str(script)]
