"""Retrieval metrics of docs/method.md section 5: consumer-to-shop Recall@K and MAP@R, and the
leave-one-out (Stanford Online Products style) variant for single-domain data.

* Recall@K (our own, chunked torch top-K on squared Euclidean distances, so a 10k x 10k query x
  gallery product never materialises at once): the share of queries with at least one image of
  their product among the K nearest gallery images, scored by the SDK's
  ``deepproduct.sdk.metrics.recall_from_ranking`` (the one definition). PML's ``AccuracyCalculator`` has no Recall@K
  for K > 1 (its ``precision_at_1`` is Recall@1), hence ours.
* MAP@R via pytorch-metric-learning's ``AccuracyCalculator`` (``mean_average_precision_at_r``,
  R = number of gallery images of the query's product), with ``k="max_bin_count"`` so MAP@R is
  exact; its ``precision_at_1`` is reported too and equals our ``recall@1`` (tests check it).

Queries whose product has no image in the gallery cannot be answered; like PML, all metrics leave
them out, and ``unmatched_queries`` counts them. All functions take numpy arrays or torch tensors
and return a plain ``dict[str, float]``. Ties in distance are broken by the top-K routine's order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from deepproduct.sdk.metrics import recall_from_ranking

DEFAULT_KS = (1, 5, 10, 20)
ArrayLike = np.ndarray | torch.Tensor | Sequence


def _as_tensor(x: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def _check(emb: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    if emb.ndim != 2:
        raise ValueError(f"{what} embeddings must be N x D, got shape {tuple(emb.shape)}")
    if len(emb) != len(labels):
        raise ValueError(f"{what}: {len(emb)} embeddings but {len(labels)} labels")


def _recall(query: torch.Tensor, q_labels: torch.Tensor, gallery: torch.Tensor, g_labels: torch.Tensor,
            ks: Sequence[int], exclude_self: bool, chunk: int) -> dict[str, float]:
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n_gallery = len(gallery) - int(exclude_self)
    if n_gallery < 1:
        raise ValueError("the gallery is empty")
    k_max = min(ks[-1], n_gallery)
    g_sq = (gallery * gallery).sum(1)
    ranked, answered = [], []  # the matched queries' top-K gallery labels and their own labels
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk]
        ql = q_labels[start:start + chunk]
        dist = (q * q).sum(1, keepdim=True) - 2.0 * q @ gallery.T + g_sq  # squared L2
        if exclude_self:
            rows = torch.arange(len(q))
            dist[rows, rows + start] = float("inf")
        same = g_labels.unsqueeze(0) == ql.unsqueeze(1)
        if exclude_self:
            same[rows, rows + start] = False
        has_match = same.any(1)
        idx = dist.topk(k_max, dim=1, largest=False).indices
        ranked.append(g_labels[idx][has_match].numpy())
        answered.append(ql[has_match].numpy())
    labels = np.concatenate(answered)
    if len(labels):
        out = recall_from_ranking(np.concatenate(ranked), labels, ks)
    else:
        out = {f"recall@{k}": float("nan") for k in ks}
    out["unmatched_queries"] = float(len(query) - len(labels))
    return out


def recall_at_k(query_emb: ArrayLike, query_labels: ArrayLike, gallery_emb: ArrayLike,
                gallery_labels: ArrayLike, ks: Sequence[int] = DEFAULT_KS,
                chunk: int = 1024) -> dict[str, float]:
    """Consumer-to-shop Recall@K: share of queries with a correct product in the top K gallery images.

    K larger than the gallery counts the whole gallery. Returns ``{"recall@K": ..., "unmatched_queries": n}``.
    """
    q, g = _as_tensor(query_emb, torch.float32), _as_tensor(gallery_emb, torch.float32)
    ql, gl = _as_tensor(query_labels, torch.long), _as_tensor(gallery_labels, torch.long)
    _check(q, ql, "query")
    _check(g, gl, "gallery")
    return _recall(q, ql, g, gl, ks, exclude_self=False, chunk=chunk)


def _accuracy_calculator():  # imported lazily: PML pulls in faiss
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

    return AccuracyCalculator(include=("mean_average_precision_at_r", "precision_at_1"),
                              k="max_bin_count", device=torch.device("cpu"))


def map_at_r(query_emb: ArrayLike, query_labels: ArrayLike, gallery_emb: ArrayLike,
             gallery_labels: ArrayLike) -> dict[str, float]:
    """MAP@R (and precision@1) from PML's ``AccuracyCalculator``, gallery separate from the queries."""
    q, g = _as_tensor(query_emb, torch.float32), _as_tensor(gallery_emb, torch.float32)
    ql, gl = _as_tensor(query_labels, torch.long), _as_tensor(gallery_labels, torch.long)
    _check(q, ql, "query")
    _check(g, gl, "gallery")
    acc = _accuracy_calculator().get_accuracy(q, ql, g, gl, ref_includes_query=False)
    return {"map@r": float(acc["mean_average_precision_at_r"]), "precision@1": float(acc["precision_at_1"])}


def retrieval_metrics(query_emb: ArrayLike, query_labels: ArrayLike, gallery_emb: ArrayLike,
                      gallery_labels: ArrayLike, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Consumer-to-shop protocol in one call: Recall@K, MAP@R and precision@1."""
    out = recall_at_k(query_emb, query_labels, gallery_emb, gallery_labels, ks)
    out.update(map_at_r(query_emb, query_labels, gallery_emb, gallery_labels))
    return out


def leave_one_out(embeddings: ArrayLike, labels: ArrayLike, ks: Sequence[int] = DEFAULT_KS,
                  chunk: int = 1024) -> dict[str, float]:
    """Single-domain protocol (SOP style): every image queries all the others.

    Images whose product has no other image are left out as queries (``unmatched_queries``).
    """
    e, lab = _as_tensor(embeddings, torch.float32), _as_tensor(labels, torch.long)
    _check(e, lab, "leave-one-out")
    out = _recall(e, lab, e, lab, ks, exclude_self=True, chunk=chunk)
    acc = _accuracy_calculator().get_accuracy(e, lab, e, lab, ref_includes_query=True)
    out["map@r"] = float(acc["mean_average_precision_at_r"])
    out["precision@1"] = float(acc["precision_at_1"])
    return out
