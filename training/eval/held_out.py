"""Embed a split and score it with the docs/method.md section 5 protocol."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from deepproduct.sdk.dataset_manifest import DatasetManifest

from ..data.product_dataset import EvalImages, items_for_split
from ..models import EmbeddingNet
from ..models.pooling import l2_normalise
from ..progress import progress_bar
from .metrics import leave_one_out, map_at_r, recall_at_k

RECALL_KS = (1, 5, 10, 20)


@torch.no_grad()
def embed_dataset(model: EmbeddingNet, dataset: EvalImages, device: torch.device, batch_size: int = 64,
                  progress: bool = False, desc: str = "embed") -> tuple[np.ndarray, np.ndarray]:
    """The one training-side embedding path: ``(model(x), unit pooled features)`` of every item.

    The head embedding is the model's own ``forward`` -- the graph ``dp-export`` traces, so what the
    held-out evaluation, the transfer evaluation and the SDK score is the same function of the same
    preprocessed tensor (docs/transfer-benchmark.md). The pooled features come from the same pass
    when the model is a plain EmbeddingNet (its forward is ``pooled_features`` then the head).
    """
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    plain = type(model).forward is EmbeddingNet.forward
    heads, pooled_all = [], []
    for x, _, _ in progress_bar(loader, desc=desc, disable=not progress, leave=False):
        x = x.to(device)
        _, pooled = model.pooled_features(x)
        head = l2_normalise(model.embed(model.head_input(pooled))) if plain else model(x)  # = forward(x)
        heads.append(head.float().cpu().numpy())
        pooled_all.append(l2_normalise(pooled).float().cpu().numpy())
    if not heads:
        return np.zeros((0, model.embedding_dim), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(heads), np.concatenate(pooled_all)


def embed_items(model: EmbeddingNet, dataset: EvalImages, device: torch.device, batch_size: int = 64,
                off_the_shelf: bool = False, progress: bool = True, desc: str = "embed") -> np.ndarray:
    """Embeddings of every item (:func:`embed_dataset`); ``off_the_shelf``: the unit pooled features."""
    head, pooled = embed_dataset(model, dataset, device, batch_size, progress, desc)
    return pooled if off_the_shelf else head


def evaluate_retrieval(model: EmbeddingNet, manifest: DatasetManifest, image_size: int, device: torch.device,
                       split: str = "test", batch_size: int = 64, off_the_shelf: bool = False,
                       progress: bool = True, eval_set: EvalImages | None = None) -> dict[str, float]:
    """Consumer-to-shop Recall@K and MAP@R (queries: phone photos; gallery: shop images incl.
    distractors) or, for single-domain data, leave-one-out over all images."""
    if eval_set is None:
        items, _ = items_for_split(manifest, split)
        eval_set = EvalImages(items, image_size)
    items = eval_set.items
    emb = embed_items(model, eval_set, device, batch_size, off_the_shelf, progress, desc=f"eval {split}")
    labels = np.array([it.label for it in items])
    domains = np.array([it.domain for it in items])
    queries, gallery = domains == 1, domains == 0
    if queries.any() and gallery.any():
        metrics = recall_at_k(emb[queries], labels[queries], emb[gallery], labels[gallery], RECALL_KS)
        metrics.update(map_at_r(emb[queries], labels[queries], emb[gallery], labels[gallery]))
        metrics["protocol"] = "consumer-to-shop"
        metrics["queries"], metrics["gallery"] = int(queries.sum()), int(gallery.sum())
    else:
        metrics = leave_one_out(emb, labels, RECALL_KS)
        metrics["protocol"] = "leave-one-out"
        metrics["queries"] = metrics["gallery"] = len(items)
    return metrics
