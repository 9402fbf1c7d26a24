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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
