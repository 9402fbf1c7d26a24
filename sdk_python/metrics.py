"""Recall@K from a ranking: the one definition the SDK's and training's rankings are scored with.

Recall@K is the share of answerable queries with at least one item of their own product among
their top K results (docs/method.md section 5). Who produces the ranking differs on purpose --
the gallery index (``search.recall_at_k``, int8 storage and filters included), the server-side
re-ranker (``training.models.ctx_rerank``) -- but the scoring of a ranking is this one function.
numpy only, like the rest of the SDK.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_from_ranking(ranked_labels: np.ndarray, query_labels: np.ndarray, ks: Sequence[int],
                        prefix: str = "") -> dict[str, float]:
    """``{f"{prefix}recall@{k}": ...}`` for a Q x K' matrix of result labels, best first.

    Only the queries passed count: leave out the unanswerable ones (no item of their product in
    the gallery) before calling, and count them separately.
    """
    hits = np.asarray(ranked_labels) == np.asarray(query_labels)[:, None]
    return {f"{prefix}recall@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}
