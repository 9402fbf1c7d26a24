"""Exact top-K inner-product search over float32 or int8 rows, streamed in cache-sized blocks.

Why blocks: a 1M x 128 gallery does not fit in cache, and neither does a 64 x 1M score
matrix. Each block of rows is scored with one BLAS call (int8 codes are first widened into a
reused float32 buffer that stays in cache, so the memory traffic is the int8 bytes), and only
the scores that beat each query's current K-th best (a running threshold, like faiss's heaps)
leave the block. Those few candidates are merged with one vectorised lexsort. There is no
Python loop over items or queries, only over blocks.

BLAS threads: the blocks are small, and multi-threaded OpenBLAS on small blocks spends more
on waking threads than it gains -- on a busy 2-core machine it was 2-5x *slower* than one
thread. So the scan pins BLAS to ``threads`` (default 1) through threadpoolctl when that
(optional, tiny) package is installed; without it BLAS keeps its own default.

Ordering contract (docs/index-format.md): score descending, ties broken by smaller position.
Blocks are visited in position order and later rows must beat the threshold strictly, so an
equal score never displaces an earlier item.

Accelerated path (``coarse_scan_top_k``, used for one to a few queries when a SIMD backend is
installed, see ``BACKENDS``): a two-stage *exact* scan. Stage 1 scores int8 codes (the index's
own codes, or an int8 shadow of a float32 index) against an int8-rounded query with an integer
SIMD dot product; a rigorous error bound B on |approximate - true score| (Cauchy-Schwarz on the
query's rounding error and the shadow's residual, plus float32 rounding) keeps every row whose
approximate score is within 2B of the running k-th best. Stage 2 re-scores only those rows with
the reference float32 formula and orders them by the same tie rule, so ids are the reference's
and scores equal it within float rounding. Why not just a faster float kernel: at batch 1 the scan
is memory-bound, and the int8 codes are a quarter of the bytes. docs/benchmarks.md has the numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_PAD_POSITION = np.iinfo(np.int64).max
#: Bytes of widened float32 rows per block: small enough for L2, large enough to amortise calls.
_BLOCK_BYTES = 1 << 21


def block_rows_for(dim: int) -> int:
    return max(256, _BLOCK_BYTES // (4 * dim))


_controller = None


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Limit BLAS to ``threads`` inside the block (no-op for None or without threadpoolctl)."""
    global _controller
    if threads is None:
        yield
        return
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    if not _controller:
        yield
        return
    with _controller.limit(limits=int(threads), user_api="blas"):
        yield


def top_k_inner_product(vectors: np.ndarray, weights: np.ndarray, k: int, *,
                        rows: np.ndarray | None = None, block_rows: int | None = None,
                        threads: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of ``weights @ vectors[rows].T`` per query row.

    ``vectors``: (N, D) float32 or int8 (a memmap is read block by block, never copied whole).
    ``weights``: (Q, D) float32 -- the normalised queries, with int8 scales already folded in.
    ``rows``: optional sorted positions of the eligible rows (a metadata filter).
    ``threads``: BLAS threads during the scan (None: leave BLAS alone).
    Returns (scores float32, positions int64), both (Q, min(k, eligible)).
    """
    with blas_threads(threads):
        return _scan(vectors, weights, k, rows, block_rows)


def _scan(vectors: np.ndarray, weights: np.ndarray, k: int, rows: np.ndarray | None,
          block_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    q_count, dim = weights.shape
    total = vectors.shape[0] if rows is None else len(rows)
    k_eff = min(int(k), total)
    if k_eff <= 0 or q_count == 0:
        return np.empty((q_count, 0), np.float32), np.empty((q_count, 0), np.int64)
    block = block_rows or block_rows_for(dim)
    widen = vectors.dtype != np.float32
    buf = np.empty((min(block, total), dim), np.float32) if widen else None
    best_s = np.full((q_count, k_eff), -np.inf, np.float32)
    best_p = np.full((q_count, k_eff), _PAD_POSITION, np.int64)
    thr = np.full(q_count, -np.inf, np.float32)
    seen = 0
    for start in range(0, total, block):
        stop = min(start + block, total)
        if rows is None:
            part = vectors[start:stop]
            positions = None
        else:
            positions = rows[start:stop]
            part = vectors[positions]
        if widen:
            np.copyto(buf[:stop - start], part, casting="unsafe")
            part = buf[:stop - start]
        scores = _score_block(part, weights)
        best_s, best_p, thr = _merge_block(scores, start, positions, best_s, best_p, thr,
                                           full=seen >= k_eff)
        seen += stop - start
    return best_s, best_p


def _score_block(part: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scores as (rows, queries): ``part @ weights.T`` is the faster BLAS orientation here."""
    if weights.shape[0] == 1:
        # A plain GEMV: OpenBLAS is far slower on the equivalent 1-row GEMM.
        return np.matmul(part, weights[0])[:, None]
    return part @ weights.T


def _merge_block(scores: np.ndarray, start: int, positions: np.ndarray | None, best_s: np.ndarray,
                 best_p: np.ndarray, thr: np.ndarray, full: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = scores.shape[0]
    q_count, k = best_s.shape
    # One read pass finds the queries this block can improve at all; usually few once warm.
    active = np.flatnonzero(scores.max(axis=0) > thr)
    if active.size == 0:
        return best_s, best_p, thr
    sub = scores if active.size == q_count else scores[:, active]
    mask = sub > thr[active]
    if n > k and (not full or np.count_nonzero(mask) > 8 * k * active.size):
        # Early blocks (or adversarial orderings): only the block's own top k can matter.
        kth = np.partition(sub, n - k, axis=0)[n - k]
        mask &= sub >= kth
    ri, aj = np.nonzero(mask)
    cand_s = sub[ri, aj]
    cand_q = active[aj]
    cand_p = (ri + start) if positions is None else positions[ri]
    all_q = np.concatenate([np.repeat(np.arange(q_count), k), cand_q])
    all_s = np.concatenate([best_s.ravel(), cand_s])
    all_p = np.concatenate([best_p.ravel(), cand_p.astype(np.int64, copy=False)])
    order = np.lexsort((all_p, -all_s, all_q))
    counts = k + np.bincount(cand_q, minlength=q_count)
    starts = np.cumsum(counts) - counts
    take = order[starts[:, None] + np.arange(k)[None, :]]
    best_s = all_s[take]
    best_p = all_p[take]
    return best_s, best_p, best_s[:, -1].copy()


# ============================================================================ accelerated path
#: Rows per stage-1 block: the int8 block and its scores stay in L2, the Python loop stays short.
COARSE_BLOCK_ROWS = 1 << 14
#: The accelerated path serves batches up to this many queries (one scan each); larger batches
#: reuse each gallery block across queries in one BLAS call, which wins there.
MAX_COARSE_QUERIES = 4
_RESCORE_ROWS = 1 << 13
#: Packed filtered subsets kept per index (each costs its share of the codes' memory).
SUBSET_CACHE = 4
_EPS32 = float(np.finfo(np.float32).eps)
_QMAX = 127


class SimdBackend:
    """An exact int8 dot-product kernel: ``dot(codes (n, D) int8, query (D,) int8) -> (n,)`` scores.

    ``pack`` (optional) re-lays a fixed block of gallery rows once, for a faster ``dot_packed``;
    a backend that packs keeps a copy of the codes (memory cost in docs/sdk.md).
    """

    name = ""
    packs = False

    def dot(self, codes: np.ndarray, query: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def pack(self, codes: np.ndarray) -> Any:
        return codes

    def dot_packed(self, packed: Any, query: np.ndarray, out: np.ndarray) -> np.ndarray:
        return self.dot(packed, query, out)


class SimsimdBackend(SimdBackend):
    """SimSIMD's ``cdist`` (AVX2/AVX-512 VNNI/NEON int8 kernels) straight on the stored codes: no copy."""

    name = "simsimd"

    def __init__(self) -> None:
        import simsimd

        self._cdist = simsimd.cdist

    def dot(self, codes: np.ndarray, query: np.ndarray, out: np.ndarray) -> np.ndarray:
        self._cdist(codes, query[None, :], metric="dot", out=out[:, None], out_dtype=out.dtype.name)
        return out


class NumkongBackend(SimdBackend):
    """NumKong (SimSIMD's successor): its packed int8 GEMM on gallery blocks packed once.

    Why packed: on cache-resident galleries the packed kernel measured ~3x faster than per-row
    dot products (docs/benchmarks.md); the packed blocks are a second copy of the codes.
    """

    name = "numkong"
    packs = True

    def __init__(self) -> None:
        import numkong

        self._nk = numkong

    def dot(self, codes: np.ndarray, query: np.ndarray, out: np.ndarray) -> np.ndarray:
        # Rows not packed in advance (a filter's subset): the packed GEMM with the query packed
        # measured ~1.7x faster than cdist.
        return np.asarray(self._nk.dots_packed(codes, self._nk.dots_pack(query[None, :])))[:, 0]

    def pack(self, codes: np.ndarray) -> Any:
        return self._nk.dots_pack(np.ascontiguousarray(codes))

    def dot_packed(self, packed: Any, query: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.asarray(self._nk.dots_packed(query[None, :], packed))[0]


class FaissSQBackend(SimdBackend):
    """faiss's ``IndexScalarQuantizer`` (QT_8bit_direct_signed: stored byte = code + 128, decoded
    back to the code) as a stage-1 *top-k'* kernel for whole, large galleries.

    Why: at 1M x 128 its scan measured ~6 ms against ~7.7 ms for SimSIMD's per-row kernel (the
    bandwidth bound there is ~4.6 ms). It returns only the best k' rows, so the plan asks for k'
    until the k'-th approximate score falls below the admission threshold (then no row outside
    them can be a candidate); with an integer query the float32 sums are exact integers
    (|sum| < 2^24). Costs a copy of the codes (N x D bytes). Filtered subsets use ``dot``, plain
    numpy integer sums (correct, not fast: "auto" never picks this backend for them).
    """

    name = "faiss"
    top_k = True

    def __init__(self) -> None:
        import faiss

        self._faiss = faiss

    def build(self, codes: np.ndarray) -> Any:
        faiss = self._faiss
        index = faiss.IndexScalarQuantizer(codes.shape[1], faiss.ScalarQuantizer.QT_8bit_direct_signed,
                                           faiss.METRIC_INNER_PRODUCT)
        flat = np.ascontiguousarray(codes).view(np.uint8).reshape(-1)
        faiss.copy_array_to_vector(flat ^ np.uint8(0x80), index.codes)
        index.ntotal = codes.shape[0]
        return index

    def search(self, index: Any, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # one thread, like every other scan here
        try:
            scores, ids = index.search(query.astype(np.float32)[None, :], k)
        finally:
            faiss.omp_set_num_threads(before)
        return scores[0], ids[0]

    def dot(self, codes: np.ndarray, query: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        return np.asarray(codes, np.int32) @ query.astype(np.int32)


#: Accelerated backends in order of preference ("auto" takes the first installed one).
BACKENDS: dict[str, type[SimdBackend]] = {"numkong": NumkongBackend, "simsimd": SimsimdBackend,
                                          "faiss": FaissSQBackend}
#: For whole galleries above PACK_MAX_ROWS rows "auto" takes the first installed of these.
LARGE_GALLERY_BACKENDS = ("faiss", "simsimd")
_loaded: dict[str, SimdBackend | None] = {}


def available_backends() -> list[str]:
    """Installed accelerated backends, preferred first ("numpy", the fallback, is always there)."""
    return [name for name in BACKENDS if _kernel(name) is not None] + ["numpy"]


def _kernel(name: str) -> SimdBackend | None:
    if name not in _loaded:
        try:
            _loaded[name] = BACKENDS[name]()
        except ImportError:
            _loaded[name] = None
    return _loaded[name]


_auto: dict[tuple[int, bool], str] = {}
#: Above this many rows "auto" prefers SimSIMD's in-place kernel over NumKong's packed blocks:
#: measured at 1M x 128 int8, the packed scan was ~1.6x slower and its copy costs 128 MB.
PACK_MAX_ROWS = 1 << 18


def resolve_backend(backend: str | None, rows: int | None = None) -> str:
    """"auto" (or None): $DEEPPRODUCT_SEARCH_BACKEND if set, else the first installed SIMD backend
    (SimSIMD first for galleries above ``PACK_MAX_ROWS`` rows when installed)."""
    backend = backend or os.environ.get("DEEPPRODUCT_SEARCH_BACKEND") or "auto"
    if backend == "auto":
        large = rows is not None and rows > PACK_MAX_ROWS
        key = (id(_loaded), large)  # cached per kernel table (tests swap it to simulate none installed)
        if key not in _auto:
            if len(_auto) > 4:
                _auto.clear()
            names = available_backends()
            large_names = [n for n in LARGE_GALLERY_BACKENDS if n in names] if large else []
            small_names = [n for n in names if n != "faiss"] or names  # faiss: large galleries only
            _auto[key] = (large_names or small_names)[0]
        return _auto[key]
    if backend != "numpy" and backend not in BACKENDS:
        raise ValueError(f"unknown search backend {backend!r}; expected auto, numpy or one of {sorted(BACKENDS)}")
    if backend != "numpy" and _kernel(backend) is None:
        raise ValueError(f"search backend {backend!r} is not installed (pip install 'deepproduct[fast-search]')")
    return backend


@dataclass(frozen=True)
class CoarseCodes:
    """Stage-1 data for one gallery: stored row v_i ~= grid * codes_i, and the bounds that make it exact.

    ``grid``: per-dimension step (float64; all ones when the index itself stores int8 codes).
    ``code_norm``: max_i ||codes_i||_2. ``residual_norm``: max_i ||v_i - grid * codes_i||_2 (0 for
    int8 storage). ``row_norm``: max_i ||v_i||_2, for the float32 rounding term.
    """

    codes: np.ndarray
    grid: np.ndarray
    code_norm: float
    residual_norm: float
    row_norm: float
    #: True for int8 storage (grid all ones: the codes are the stored values).
    unit_grid: bool = False
    #: Per packing backend: its packed copy of each unfiltered scan block (built on first use).
    packed: dict[str, list[Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes)


def coarse_codes_for(vectors: np.ndarray, rows_per_pass: int = 1 << 16) -> CoarseCodes:
    """The coarse codes of a stored block: the codes themselves for int8, an int8 shadow for float32.

    The float32 shadow costs a quarter of the vectors' memory, built once per index (docs/sdk.md).
    """
    n, dim = vectors.shape
    if vectors.dtype == np.int8:
        peak = 0
        for start in range(0, n, rows_per_pass):
            block = np.asarray(vectors[start:start + rows_per_pass], dtype=np.int64)
            peak = max(peak, int(np.einsum("ij,ij->i", block, block).max(initial=0)))
        norm = float(np.sqrt(peak))
        return CoarseCodes(vectors, np.ones(dim), norm, 0.0, norm, unit_grid=True)
    peak_abs = np.zeros(dim)
    for start in range(0, n, rows_per_pass):
        block = np.abs(np.asarray(vectors[start:start + rows_per_pass], dtype=np.float64))
        np.maximum(peak_abs, block.max(axis=0, initial=0.0), out=peak_abs)
    grid = np.where(peak_abs > 0, peak_abs, 1.0) / _QMAX
    codes = np.empty((n, dim), np.int8)
    code_peak = residual_peak = row_peak = 0.0
    for start in range(0, n, rows_per_pass):
        block = np.asarray(vectors[start:start + rows_per_pass], dtype=np.float64)
        c = np.clip(np.rint(block / grid), -_QMAX, _QMAX)
        codes[start:start + len(block)] = c
        residual = block - c * grid
        code_peak = max(code_peak, float(np.einsum("ij,ij->i", c, c).max(initial=0)))
        residual_peak = max(residual_peak, float(np.einsum("ij,ij->i", residual, residual).max(initial=0)))
        row_peak = max(row_peak, float(np.einsum("ij,ij->i", block, block).max(initial=0)))
    return CoarseCodes(codes, grid, float(np.sqrt(code_peak)), float(np.sqrt(residual_peak)),
                       float(np.sqrt(row_peak)))


def _block_bounds(total: int, block_rows: int) -> list[tuple[int, int]]:
    return [(start, min(start + block_rows, total)) for start in range(0, total, block_rows)]


def coarse_scan_top_k(vectors: np.ndarray, coarse: CoarseCodes, weights: np.ndarray, k: int, *,
                      rows: np.ndarray | None = None, backend: str = "simsimd",
                      block_rows: int = COARSE_BLOCK_ROWS, rows_key: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``top_k_inner_product``'s result through the two-stage exact scan (module docstring).

    ``rows_key``: a stable name for ``rows`` (e.g. the filter as JSON); a packing backend then
    keeps the packed subset for the next search with the same filter (up to ``SUBSET_CACHE``
    subsets per index), so a repeated filtered search streams only its share of the codes.
    """
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    q_count = weights.shape[0]
    total = vectors.shape[0] if rows is None else len(rows)
    k_eff = min(int(k), total)
    if k_eff <= 0 or q_count == 0:
        return np.empty((q_count, 0), np.float32), np.empty((q_count, 0), np.int64)
    kernel = _kernel(backend)
    if kernel is None:
        raise ValueError(f"search backend {backend!r} is not installed")
    bounds = _block_bounds(total, block_rows)
    packed = None
    if kernel.packs and (rows is None or rows_key is not None):
        key = f"{backend}/{block_rows}" + ("" if rows is None else f"/{rows_key}")
        if key not in coarse.packed:
            if rows is not None:
                subsets = [name for name in coarse.packed if name.count("/") > 1]
                for old in subsets[:max(0, len(subsets) - SUBSET_CACHE + 1)]:
                    del coarse.packed[old]  # oldest first (dicts keep insertion order)
                coarse.packed[key] = [kernel.pack(np.take(coarse.codes, rows[a:b], axis=0)) for a, b in bounds]
            else:
                coarse.packed[key] = [kernel.pack(coarse.codes[a:b]) for a, b in bounds]
        packed = coarse.packed[key]
    out_s = np.empty((q_count, k_eff), np.float32)
    out_p = np.empty((q_count, k_eff), np.int64)
    for qi in range(q_count):
        cand = _coarse_candidates(coarse, weights[qi], k_eff, rows, kernel, bounds, packed)
        out_s[qi], out_p[qi] = _rescore(vectors, cand, weights[qi], k_eff)
    return out_s, out_p


#: Rows per block of the plain (non-packing) kernel's unfiltered scan: 64k rows of scores (256 KB)
#: stay in L2, and at 1M rows the per-block Python work is 16 calls instead of 62.
STREAM_BLOCK_ROWS = 1 << 16


class CoarsePlan:
    """Everything of the unfiltered accelerated scan that does not depend on the query, built once.

    Per gallery and backend: the kernel, the scan blocks (packed or views of the codes), the
    error-bound constants. ``search`` is then one pass over the blocks per query, with no
    allocation proportional to the gallery (a block of scores at a time) and no re-derivation of
    per-index state: the single-query fast path of ``GalleryIndex.search_arrays``.
    """

    def __init__(self, vectors: np.ndarray, coarse: CoarseCodes, backend: str) -> None:
        kernel = _kernel(backend)
        if kernel is None:
            raise ValueError(f"search backend {backend!r} is not installed")
        n, dim = coarse.codes.shape
        block = COARSE_BLOCK_ROWS if kernel.packs else STREAM_BLOCK_ROWS
        self.vectors, self.coarse, self.kernel, self.count = vectors, coarse, kernel, n
        self.bounds = _block_bounds(n, block)
        self.top_k_index = None
        if getattr(kernel, "top_k", False):
            key = f"{backend}/index"
            if key not in coarse.packed:
                coarse.packed[key] = [kernel.build(coarse.codes)]
            self.top_k_index = coarse.packed[key][0]
            self.blocks, self.bounds = [], []
            self._dot = kernel.dot
        elif kernel.packs:
            key = f"{backend}/{block}"
            if key not in coarse.packed:
                coarse.packed[key] = [kernel.pack(coarse.codes[a:b]) for a, b in self.bounds]
            self.blocks = coarse.packed[key]
            self._dot = kernel.dot_packed
        else:
            self.blocks = [np.ascontiguousarray(coarse.codes[a:b]) for a, b in self.bounds]
            self._dot = kernel.dot
        self.block_rows = max((b - a for a, b in self.bounds), default=0)
        self.out_dtype = np.float32 if _QMAX * _QMAX * dim < (1 << 24) else np.float64
        self.grid = None if coarse.unit_grid else np.asarray(coarse.grid, np.float64)
        gamma = dim * _EPS32 / (1 - dim * _EPS32)
        self._w_coef = coarse.residual_norm + 2 * gamma * coarse.row_norm
        self._code_norm = coarse.code_norm
        self._margin_floor = 1e-6 * coarse.code_norm * _QMAX
        self._chunk_starts: dict[int, np.ndarray] = {}  # search_one's threshold chunks, per k

    def search(self, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions), each (Q, min(k, N)): ``coarse_scan_top_k`` without a filter."""
        k_eff = min(int(k), self.count)
        q_count = weights.shape[0]
        if q_count == 1 and k_eff > 0:
            s, p = _rescore(self.vectors, self.candidates(weights[0], k_eff), weights[0], k_eff)
            return s[None, :], p[None, :]
        out_s = np.empty((q_count, k_eff), np.float32)
        out_p = np.empty((q_count, k_eff), np.int64)
        if k_eff > 0:
            for qi in range(q_count):
                out_s[qi], out_p[qi] = _rescore(self.vectors, self.candidates(weights[qi], k_eff), weights[qi], k_eff)
        return out_s, out_p

    def search_one(self, w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``search`` for one query (float32 (D,) weights), inlined for a gallery of one block
        (up to 16k rows packed, 64k in place): each numpy call here costs about a microsecond,
        against a ~28 us kernel at 10k rows."""
        k = min(int(k), self.count)
        if len(self.blocks) != 1 or k < 1 or self.top_k_index is not None:
            return self.search(w[None, :], k)
        # _query_codes inlined (same arithmetic): a function call and a float64 copy less.
        w64 = w.astype(np.float64)
        u = w64 if self.grid is None else w64 * self.grid
        peak = float(np.abs(u).max())
        step = peak / _QMAX if peak > 0 else 1.0
        r = u / step
        uq = np.rint(r)
        r -= uq
        bound = self._code_norm * step * math.sqrt(float(r @ r)) + self._w_coef * math.sqrt(float(w64 @ w64))
        margin = 2 * bound * (1 + 1e-6) / step + self._margin_floor
        scores = self._dot(self.blocks[0], uq.astype(np.int8),
                           None if self.kernel.packs else np.empty(self.count, self.out_dtype))
        n = self.count
        if n >= k:
            # The smallest of k disjoint chunks' maxima (the last chunk takes the remainder rows)
            # is a lower bound on the k-th best: one reduceat, offsets cached per k.
            starts = self._chunk_starts.get(k)
            if starts is None:
                starts = np.arange(k, dtype=np.intp) * (n // k)
                if len(self._chunk_starts) < 16:
                    self._chunk_starts[k] = starts
            thr = math.ceil(float(np.maximum.reduceat(scores, starts).min()) - margin)
            cand = (scores >= thr).nonzero()[0]
            if cand.size > max(4 * k, 128):
                # Tighten with the exact k-th approximate score only for many candidates: below
                # ~128 rows (20-95 at 10k x 128, k=10) re-scoring the surplus costs less than this.
                kept = scores[cand]
                cand = cand[kept >= math.ceil(float(np.partition(kept, kept.size - k)[kept.size - k]) - margin)]
        else:
            cand = np.arange(n)
        if _vecdot is None:
            s, p = _rescore(self.vectors, cand, w, k)
            return s[None, :], p[None, :]
        # _rescore for an ascending ``cand`` (nonzero's order): vecdot casts the rows to float64
        # itself (the same per-row float64 sums), and a stable sort on -score keeps equal scores
        # in position order, which is lexsort's tie rule.
        s = _vecdot(np.take(self.vectors, cand, axis=0), w64).astype(np.float32)
        order = np.argsort(-s, kind="stable")[None, :k]  # (1, k): the result's shape directly
        return s[order], cand[order]

    def candidates(self, w: np.ndarray, k: int) -> np.ndarray:
        """``_coarse_candidates`` for the whole gallery; a block whose best approximate score is
        below the running threshold costs one max pass (most blocks, once the threshold is warm)."""
        query, margin = _query_codes(w, self.grid, self._code_norm, self._w_coef, self._margin_floor)
        if self.top_k_index is not None:
            return self._top_k_candidates(query, margin, k)
        buf = None if self.kernel.packs else np.empty(self.block_rows, self.out_dtype)
        kept_pos: list[np.ndarray] = []
        kept_s: list[np.ndarray] = []
        kept_count = 0
        thr = thr_c = -math.inf
        for block, (start, stop) in zip(self.blocks, self.bounds, strict=True):
            n = stop - start
            scores = self._dot(block, query, None if buf is None else buf[:n])
            if thr_c > -math.inf and scores.max() < thr_c:
                continue
            if n >= k:
                chunk = n // k
                thr = max(thr, float(scores[:chunk * k].reshape(k, chunk).max(axis=1).min()) - margin)
                thr_c = math.ceil(thr)
            idx = (scores >= thr_c).nonzero()[0] if thr_c > -math.inf else np.arange(n)
            if idx.size == 0:
                continue
            kept_s.append(scores[idx])
            kept_pos.append(idx + start)
            kept_count += idx.size
            # Tighten once the kept rows outnumber k (a few dozen surplus rows cost less to
            # re-score than a partition would).
            if kept_count >= k and (len(kept_s) > 1 or kept_count > max(4 * k, 128)):
                s_all = np.concatenate(kept_s) if len(kept_s) > 1 else kept_s[0]
                p_all = np.concatenate(kept_pos) if len(kept_pos) > 1 else kept_pos[0]
                thr = max(thr, float(np.partition(s_all, s_all.size - k)[s_all.size - k]) - margin)
                thr_c = math.ceil(thr)
                keep = s_all >= thr_c
                kept_s, kept_pos = [s_all[keep]], [p_all[keep]]
                kept_count = int(kept_s[0].size)
        cand = np.concatenate(kept_pos) if len(kept_pos) > 1 else kept_pos[0]
        if len(kept_s) > 1:  # a final pass with the final threshold
            s_all = np.concatenate(kept_s)
            if s_all.size > k:
                cand = cand[s_all >= math.ceil(float(np.partition(s_all, s_all.size - k)[s_all.size - k]) - margin)]
        return cand.astype(np.int64, copy=False)

    def _top_k_candidates(self, query: np.ndarray, margin: float, k: int) -> np.ndarray:
        """Candidates from a top-k' kernel: ask for k' rows until the k'-th approximate score is
        below the threshold (k-th best - margin), so every row that could qualify is among them."""
        depth = min(self.count, max(4 * k, 64))
        while True:
            scores, ids = self.kernel.search(self.top_k_index, query, depth)
            thr = math.ceil(float(scores[k - 1]) - margin)
            if depth >= self.count or scores[depth - 1] < thr:
                return np.sort(ids[scores >= thr]).astype(np.int64, copy=False)
            depth = min(self.count, depth * 4)


def _query_codes(w: np.ndarray, grid: np.ndarray | None, code_norm: float, w_coef: float,
                 margin_floor: float) -> tuple[np.ndarray, float]:
    """The int8-rounded query of stage 1 and the admission margin in integer score units.

    The stage-1 score is codes . u with u = w * grid (w for int8 storage); u is rounded to
    ``uq * step``. |approximate - true| <= ||codes|| ||u - uq step|| + (residual + float32 rounding
    terms) ||w|| =: B; a row is kept while its approximate score is within 2B of the k-th best.
    """
    w64 = w.astype(np.float64)
    u = w64 if grid is None else w64 * grid
    peak = float(np.abs(u).max())
    step = peak / _QMAX if peak > 0 else 1.0
    r = u / step
    uq = np.rint(r)
    r -= uq  # (u - uq step) / step, to within float64 rounding (far inside the margin's 1e-6 slack)
    bound = code_norm * step * math.sqrt(float(r @ r)) + w_coef * math.sqrt(float(w64 @ w64))
    return uq.astype(np.int8), 2 * bound * (1 + 1e-6) / step + margin_floor


def _coarse_candidates(coarse: CoarseCodes, w: np.ndarray, k: int, rows: np.ndarray | None,
                       kernel: SimdBackend, bounds: list[tuple[int, int]],
                       packed: list[Any] | None) -> np.ndarray:
    """Positions of every row whose true score can reach the top ``k`` (a superset, usually ~k)."""
    dim = w.shape[0]
    w64 = w.astype(np.float64)
    u = w64 if coarse.unit_grid else w64 * coarse.grid  # the score is codes . u (+ the residual term)
    peak = max(float(u.max()), -float(u.min()))
    step = peak / _QMAX if peak > 0 else 1.0
    uq = np.rint(u / step)
    diff = u - uq * step
    err = math.sqrt(float(diff @ diff))
    w_norm = math.sqrt(float(w64 @ w64))
    # float32 rounding of a D-term dot product (reference and re-scoring): gamma_D * ||v|| ||w||.
    gamma = dim * _EPS32 / (1 - dim * _EPS32)
    bound = coarse.code_norm * err + coarse.residual_norm * w_norm + 2 * gamma * coarse.row_norm * w_norm
    margin = 2 * bound * (1 + 1e-6) / step + 1e-6 * coarse.code_norm * _QMAX  # integer score units
    query = uq.astype(np.int8)
    # float32 holds the integer scores exactly below 2^24 (127 * 127 * D < 2^24 for D <= 1040).
    out_dtype = np.float32 if _QMAX * _QMAX * dim < (1 << 24) else np.float64
    buf = np.empty(max(b - a for a, b in bounds), out_dtype)
    kept_pos: list[np.ndarray] = []
    kept_s: list[np.ndarray] = []
    kept_count = 0
    thr = -np.inf  # admit rows scoring >= thr: (running k-th best approximate score) - margin
    for i, (start, stop) in enumerate(bounds):
        n = stop - start
        if packed is not None:
            scores = kernel.dot_packed(packed[i], query, buf[:n])
        else:
            # np.take gathers rows ~2.5x faster than fancy indexing (measured, 10k of 100k rows).
            block = coarse.codes[start:stop] if rows is None else np.take(coarse.codes, rows[start:stop], axis=0)
            scores = kernel.dot(np.ascontiguousarray(block), query, buf[:n])
        if n >= k:
            # A cheap lower bound on the k-th best: the smallest of k disjoint chunks' maxima (k
            # distinct rows all score at least that). One reduction pass, no partition.
            chunk = n // k
            floor = float(scores[:chunk * k].reshape(k, chunk).max(axis=1).min()) - margin
            thr = max(thr, floor)
        # Scores are integers, so ">= thr" is ">= ceil(thr)": an integer bound keeps the comparison
        # in the scores' own dtype (a float bound would widen every int32 score to float64).
        idx = np.flatnonzero(scores >= math.ceil(thr)) if thr > -np.inf else np.arange(n)
        if idx.size == 0:
            continue
        kept_s.append(scores[idx].astype(np.float64))
        kept_pos.append((idx + start) if rows is None else rows[start + idx])
        kept_count += idx.size
        if kept_count >= k and (len(kept_s) > 1 or kept_count > 4 * k):
            s_all = np.concatenate(kept_s) if len(kept_s) > 1 else kept_s[0]
            p_all = np.concatenate(kept_pos) if len(kept_pos) > 1 else kept_pos[0]
            thr = max(thr, float(np.partition(s_all, s_all.size - k)[s_all.size - k]) - margin)
            keep = s_all >= thr
            kept_s, kept_pos = [s_all[keep]], [p_all[keep]]
            kept_count = int(keep.sum())
    cand = np.concatenate(kept_pos).astype(np.int64, copy=False)
    if len(kept_s) > 1:  # a final pass with the final threshold
        s_all = np.concatenate(kept_s)
        if s_all.size > k:
            cand = cand[s_all >= float(np.partition(s_all, s_all.size - k)[s_all.size - k]) - margin]
    return cand


def _rescore(vectors: np.ndarray, cand: np.ndarray, w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the candidates, best ``k`` by (score desc, position asc).

    Computed per row in float64 and rounded once to float32, in chunks: the same value for equal
    rows wherever they sit (a BLAS GEMV may round its tail rows differently, which would break
    exact ties), and the float64 score of docs/index-format.md to within one float32 rounding.
    """
    w64 = w.astype(np.float64)
    if len(cand) <= _RESCORE_ROWS:  # the usual case: a few dozen candidates
        scores = _row_dots(np.take(vectors, cand, axis=0), w64).astype(np.float32)
        order = np.lexsort((cand, -scores))[:k]
        return scores[order], cand[order]
    scores = np.empty(len(cand), np.float32)
    for start in range(0, len(cand), _RESCORE_ROWS):
        scores[start:start + _RESCORE_ROWS] = _row_dots(np.take(vectors, cand[start:start + _RESCORE_ROWS], axis=0), w64)
    order = np.lexsort((cand, -scores))[:k]
    return scores[order], cand[order]


_vecdot = getattr(np, "vecdot", None)  # numpy >= 2.0


def _row_dots(part: np.ndarray, w64: np.ndarray) -> np.ndarray:
    """float64 ``part @ w64`` with the same arithmetic for every row (so equal rows tie exactly,
    wherever they sit; a BLAS GEMV rounds its tail rows differently): vecdot, else einsum."""
    part = part.astype(np.float64, copy=False)
    return _vecdot(part, w64) if _vecdot is not None else np.einsum("ij,j->i", part, w64)
