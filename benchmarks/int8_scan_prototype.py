"""Prototype (benchmark-only): the int8 gallery scan as an integer matmul in ONNX Runtime.

Status: superseded in the SDK by the two-stage SIMD int8 scan (deepproduct.sdk.exact_search,
NumKong/SimSIMD kernels with a rigorous error bound, so its top-k is exact, not "exact unless
a true top-k item fell below the top ``rerank``"); kept as a comparison row for environments
with ONNX Runtime only (``dp-bench search --prototype``). docs/benchmarks.md has both.

Why: the SDK's int8 scan widens every int8 code to float32 before a float BLAS call, so it
is bound by the widening, not by the 4x fewer bytes it reads (measured: 5x above its memory
bound at 1M x 128). ONNX Runtime -- already an SDK dependency -- has integer matmul kernels
(x86 VNNI/AVX2, ARM dot-product) that read int8 directly. This module shows what that would
give, for the SDK engineer to adopt or reject; the SDK's code is not touched.

How:
- Gallery codes c (int8) are stored once as ``c XOR 0x80`` = c + 128 (uint8) and fed as
  ``MatMulInteger``'s A with zero point 128: ONNX Runtime's fast path is uint8 x int8 (the int8 x
  int8 kernel is ~10x slower on this CPU).
- Queries (already scaled per dimension by the index's int8 scales, ``prepare_queries``) are
  quantised per query to 7 bits ([-63, 63]): on AVX2 without VNNI the u8 x s8 kernel sums pairs in
  int16, and 255 x 63 x 2 stays below 32767, so no saturation on any x86.
- Each block of rows gives int32 scores; a running per-query threshold keeps only candidates that
  can enter the top ``rerank`` (default 4k) -- the SDK's own merge idea. The candidates are then
  re-scored exactly in float (dequantised codes . query), so the final top-k uses the same
  scores as the SDK; only a true top-k item that the 7-bit query pushed below the top ``rerank``
  could be missed (``overlap_at_k`` in the benchmark measures it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_BLOCK_ROWS = 1 << 16
_FIRST_BLOCK = 1 << 12


def _session(threads: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["codes", "query", "zero"], ["scores"])], "int8_scan",
        [helper.make_tensor_value_info("codes", TensorProto.UINT8, ["N", "D"]),
         helper.make_tensor_value_info("query", TensorProto.INT8, ["D", "Q"])],
        [helper.make_tensor_value_info("scores", TensorProto.INT32, ["N", "Q"])],
        [helper.make_tensor("zero", TensorProto.UINT8, [], [128])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


class OrtInt8Scan:
    """Exact-rescored top-k over an int8 ``GalleryIndex``'s codes via ONNX Runtime MatMulInteger."""

    def __init__(self, index: Any, threads: int = 1, rerank_factor: int = 4) -> None:
        if index.storage != "int8":
            raise ValueError("the prototype scans int8 indexes only")
        self.index = index
        self.codes = np.asarray(index.vectors)
        self.shifted = self.codes.view(np.uint8) ^ np.uint8(0x80)  # c + 128, once (what a loader would keep)
        self.session = _session(threads)
        self.rerank_factor = rerank_factor

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32, positions int64), (Q, k), best first, scores as the SDK computes them."""
        weights = self.index.prepare_queries(queries)  # (Q, D) float32, int8 scales folded in
        q_scale = np.maximum(np.abs(weights).max(axis=1), 1e-30) / 63.0
        query_t = np.ascontiguousarray(np.rint(weights / q_scale[:, None]).astype(np.int8).T)
        n, q_count = len(self.codes), len(weights)
        keep = min(n, self.rerank_factor * k)
        # Per query, the best ``keep`` integer scores so far, sorted descending (last = threshold).
        cand = np.full((q_count, keep), -1, np.int64)
        cand_s = np.full((q_count, keep), -(1 << 40), np.int64)  # below any int32 score
        start = 0
        while start < n:
            # A small first block seeds the thresholds; later blocks pass few candidates.
            stop = min(n, start + (_FIRST_BLOCK if start == 0 else _BLOCK_ROWS))
            scores = self.session.run(None, {"codes": self.shifted[start:stop], "query": query_t})[0]  # (rows, Q)
            mask = scores > cand_s[:, -1][None, :]  # row-major (rows, Q): no transpose of the block
            if len(scores) > keep and np.count_nonzero(mask) > 8 * keep * q_count:
                # First block (or an adversarial order): only the block's own top ``keep`` can matter.
                mask &= scores >= np.partition(scores, len(scores) - keep, axis=0)[len(scores) - keep][None, :]
            hits = np.flatnonzero(mask)
            if hits.size:
                rows, cols = np.divmod(hits, q_count)
                cand_s, cand = _merge(cand_s, cand, cols, scores[rows, cols], rows + start)
            start = stop
        # Exact re-scoring of the candidates, the SDK's own score: codes (as float) . weights.
        exact = np.einsum("qcd,qd->qc", self.codes[cand].astype(np.float32), weights)
        order = np.lexsort((cand, -exact), axis=1)[:, :k]
        return np.take_along_axis(exact, order, axis=1), np.take_along_axis(cand, order, axis=1)


def _merge(best_s: np.ndarray, best_p: np.ndarray, q: np.ndarray, s: np.ndarray, p: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """New candidates (query q, score s, position p) merged into each query's sorted best list."""
    q_count, keep = best_s.shape
    all_q = np.concatenate([np.repeat(np.arange(q_count), keep), q])
    all_s = np.concatenate([best_s.ravel(), s.astype(np.int64)])
    all_p = np.concatenate([best_p.ravel(), p])
    order = np.lexsort((-all_s, all_q))  # by query, then score descending
    counts = keep + np.bincount(q, minlength=q_count)
    take = order[(np.cumsum(counts) - counts)[:, None] + np.arange(keep)[None, :]]
    return all_s[take], all_p[take]
