"""``dp-bench search``: the SDK's exact search against faiss ``IndexFlatIP``, same data, same run.

For each gallery size the same unit vectors go into a float32 and an int8 ``GalleryIndex``
(the SDK's public API, ``search_arrays``) and into faiss; the same query batches are timed on
each, with the same thread count (SDK: BLAS threads; faiss: OpenMP threads). faiss is timed
twice: as shipped, and with its BLAS path forced (see ``FAISS_VARIANTS``), so a ratio against
a needlessly slow baseline is never the only one reported. Each record
carries the vector block's bytes, the bytes one batch scans and the memory-bandwidth bound
(bytes scanned / measured copy bandwidth), so a ratio to faiss and a ratio to the hardware's
floor can both be read off.

Data: clustered unit vectors (a Gaussian centre per ~100 items, plus noise), with queries that
are noisy copies of gallery items. Product embeddings cluster like this, and the SDK's running
top-K threshold prunes differently on clustered data than on isotropic noise.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from .bandwidth import copy_bandwidth, scan_bound_ms
from .machine import describe_host
from .schema import make_record, new_run_id
from .timing import time_calls

#: faiss as shipped, and with its BLAS path forced. Recent faiss (1.15 here) switches to BLAS only
#: when queries x dim >= distance_compute_blas_threshold (128000: 1000 queries at d = 128); below
#: that each query streams the whole gallery on its own, so a batch of 64 reads it 64 times.
FAISS_VARIANTS: tuple[tuple[str, int | None], ...] = (("faiss-IndexFlatIP", None), ("faiss-IndexFlatIP-blas", 0))


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
                 bandwidth_bytes: int = 256 << 20, prototype: bool = False, run_id: str | None = None,
                 progress: bool = True) -> list[dict[str, Any]]:
    """Bandwidth record, then one search record per impl x storage x size x batch x threads.

    ``prototype`` adds the int8 scan of ``int8_scan_prototype`` (ONNX Runtime MatMulInteger) on the
    SDK's int8 index, as one more implementation in the same table.
    """
    run_id = run_id or new_run_id()
    gbps = copy_bandwidth(bandwidth_bytes)
    records = [make_record("bandwidth", machine=describe_host(), run_id=run_id, copy_gb_per_s=round(gbps, 3),
                           bytes=bandwidth_bytes, method="numpy copyto float64, best of 5, read+write bytes")]
    for n in sizes:
        # One function call per size: its indexes are freed before the next (larger) size is built.
        records += _bench_size(n, dim, batches or [1, 64], k, threads or [1], storages, runs, warmup, budget_s,
                               seed, gbps, prototype, run_id, progress)
    return records


def _bench_size(n: int, dim: int, batches: list[int], k: int, threads: list[int], storages: tuple[str, ...],
                runs: int, warmup: int, budget_s: float, seed: int, gbps: float, prototype: bool, run_id: str,
                progress: bool) -> list[dict[str, Any]]:
    import faiss

    from deepproduct.sdk.gallery_index import GalleryIndex

    data = clustered_unit_vectors(n, dim, seed)
    ids = np.arange(n).astype(str).tolist()
    bar = tqdm(total=len(storages) + 1, desc=f"build {n:,}", disable=not progress, leave=False)
    indexes = {}
    for storage in storages:
        indexes[storage] = GalleryIndex.from_embeddings(data, ids, storage=storage)
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
    for batch, t in tqdm(configs, desc=f"search {n:,}", disable=not progress, leave=False):
        queries = make_queries(gallery_f32, batch, seed + batch)
        faiss.omp_set_num_threads(t)
        base = {"gallery_size": n, "dim": dim, "batch": batch, "k": k, "threads": t,
                "data": "clustered-unit-gaussian"}
        faiss_bytes = n * dim * 4
        faiss_ms = {}
        for impl, threshold in FAISS_VARIANTS:
            faiss.cvar.distance_compute_blas_threshold = default_threshold if threshold is None else threshold
            try:
                stats = time_calls(lambda: flat.search(queries, k), runs, warmup, budget_s)  # noqa: B023
                _, truth = flat.search(queries, k)
            finally:
                faiss.cvar.distance_compute_blas_threshold = default_threshold
            faiss_ms[impl] = stats.median_ms
            records.append(make_record(
                "search", machine=describe_host(), run_id=run_id, impl=impl, storage="float32",
                index_bytes=faiss_bytes, bytes_scanned=faiss_bytes,
                bandwidth_bound_ms=round(scan_bound_ms(faiss_bytes, gbps), 4), working_bytes=None,
                overlap_at_k=1.0, blas_threshold=default_threshold if threshold is None else threshold,
                **base, **stats.as_fields()))
        ours: list[tuple[str, str, Any, Callable[[], Any]]] = [
            ("sdk-GalleryIndex", storage, index,
             lambda index=index, queries=queries, t=t: index.search_arrays(queries, k, threads=t))
            for storage, index in indexes.items()]
        if prototype and "int8" in indexes:
            from .int8_scan_prototype import OrtInt8Scan

            scan = OrtInt8Scan(indexes["int8"], threads=t)
            ours.append(("prototype-ort-MatMulInteger", "int8", indexes["int8"],
                         lambda scan=scan, queries=queries: scan.search(queries, k)))
        for impl, storage, index, call in ours:
            stats = time_calls(call, runs, warmup, budget_s)
            _, found = call()
            scanned = int(index.vectors.nbytes)
            records.append(make_record(
                "search", machine=describe_host(), run_id=run_id, impl=impl, storage=storage,
                index_bytes=scanned + (0 if index.scales is None else int(index.scales.nbytes)),
                bytes_scanned=scanned, bandwidth_bound_ms=round(scan_bound_ms(scanned, gbps), 4),
                working_bytes=working_bytes(call), overlap_at_k=round(overlap_at_k(found, truth), 4),
                ratio_to_faiss=round(stats.median_ms / faiss_ms[FAISS_VARIANTS[0][0]], 3),
                ratio_to_best_faiss=round(stats.median_ms / min(faiss_ms.values()), 3), **base, **stats.as_fields()))
    return records
