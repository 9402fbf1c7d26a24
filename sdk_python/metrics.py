"""Recall@K from a ranking: the one definition the SDK's and training's rankings are scored with.

Recall@K is the share of answerable queries with at least one item of their own product among
their top K results (docs/method.md section 5). Who produces the ranking differs on purpose --
the gallery index (``search.recall_at_k``, int8 storage and filters included), the server-side
re-ranker (``training.models.ctx_rerank``), training's chunked torch top-K
(``training.eval.metrics``), the export gate's per-query top-1 (``export.recall_gate.query_hits``)
-- but the scoring of a ranking is these two functions. numpy only, like the rest of the SDK.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hits_at_k(ranked_labels: np.ndarray, query_labels: np.ndarray, k: int) -> np.ndarray:
    """Per-query hit: True where an item of the query's own product is among its first ``k`` results.

    ``ranked_labels`` is a Q x K' matrix of result labels, best first (K' < k counts all K').
    """
    return (np.asarray(ranked_labels)[:, :k] == np.asarray(query_labels)[:, None]).any(axis=1)


def recall_from_ranking(ranked_labels: np.ndarray, query_labels: np.ndarray, ks: Sequence[int],
                        prefix: str = "") -> dict[str, float]:
    """``{f"{prefix}recall@{k}": ...}`` for a Q x K' matrix of result labels, best first.

    Only the queries passed count: leave out the unanswerable ones (no item of their product in
    the gallery) before calling, and count them separately.
    """
    return {f"{prefix}recall@{k}": float(hits_at_k(ranked_labels, query_labels, k).mean()) for k in ks}
