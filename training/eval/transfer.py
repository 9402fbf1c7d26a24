"""Transfer evaluation inside every training run: the real-image transfer set (``dp-data
transfer``, docs/transfer-benchmark.md) scored beside the held-out procedural split each epoch.

Why: a fine-tuned model can gain on the procedural split while its head collapses or its backbone
forgets what transfers to real photographs. Scoring the transfer set with the **head embedding**
and with the **pooled backbone features** of the same forward pass, every epoch (and once before
the first step), shows both while they happen.

Cost is kept small: the set is decoded and preprocessed once (cached tensors), each image goes
through the backbone once per evaluation (the head is applied to the pooled features of that
pass), only Recall@K is computed (``metrics.recall_at_k``, no MAP@R), and
``eval.transfer_max_products`` can cap the products scored (a seeded, fixed subset).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from deepproduct.sdk.dataset_manifest import DatasetManifest, DatasetManifestError, read_dataset_manifest

from ..data.product_dataset import DataError, EvalImages, check_images_exist, items_for_split
from ..models import EmbeddingNet
from .held_out import embed_dataset
from .metrics import recall_at_k

TRANSFER_KS = (1, 5, 10)
PREFIX = "transfer/"


def shared_products(transfer: DatasetManifest, train: DatasetManifest) -> list[str]:
    """Product ids of the transfer set that the training split also holds (sorted)."""
    return sorted(set(transfer.products()) & set(train.products("train")))


class TransferEval:
    """The transfer set, loaded and checked once; :meth:`__call__` scores a model on it."""

    def __init__(self, path: str | Path, image_size: int, train_manifest: DatasetManifest,
                 max_products: int | None = None, seed: int = 0) -> None:
        try:
            self.manifest = read_dataset_manifest(path)
        except (DatasetManifestError, OSError) as exc:
            raise DataError(f"eval.transfer_manifest: {exc}") from exc
        shared = shared_products(self.manifest, train_manifest)
        if shared:
            raise DataError(f"{path}: transfer manifest shares {len(shared)} product id(s) with the training split "
                            f"of {train_manifest.csv_path} ({', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''})"
                            f"; a transfer set must be disjoint from training")
        items, products = items_for_split(self.manifest, "test")
        if max_products is not None and max_products < len(products):
            keep = set(random.Random(seed).sample(range(len(products)), max_products))
            items = [it for it in items if it.label in keep]
        queries = sum(it.domain == 1 for it in items)
        if not queries or queries == len(items):
            raise DataError(f"{path}: a transfer set needs test rows of both domains (shop gallery, user queries)")
        check_images_exist(items, self.manifest)
        self.images = EvalImages(items, image_size, cache=True)
        self.labels = np.array([it.label for it in items])
        self.is_query = np.array([it.domain == 1 for it in items])

    def embed(self, model: EmbeddingNet, device: torch.device, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Head embeddings and unit pooled features through the one embedding path
        (:func:`held_out.embed_dataset`: the exported graph's ``forward``). It used to apply the
        head to the raw pooled features, skipping ``head_input`` -- 2.1 points off the SDK's figure
        for a ``normalise_pooled`` model."""
        return embed_dataset(model, self.images, device, batch_size)

    def __call__(self, model: EmbeddingNet, device: torch.device, batch_size: int = 64) -> dict[str, float]:
        """``transfer/recall@K`` (head) and ``transfer/pooled/recall@K`` (pooled features), plus the
        query and gallery counts."""
        head, pooled = self.embed(model, device, batch_size)
        q, g = self.is_query, ~self.is_query
        out: dict[str, float] = {}
        for name, emb in (("", head), ("pooled/", pooled)):
            r = recall_at_k(emb[q], self.labels[q], emb[g], self.labels[g], TRANSFER_KS)
            out |= {f"{PREFIX}{name}recall@{k}": r[f"recall@{k}"] for k in TRANSFER_KS}
        out[f"{PREFIX}queries"], out[f"{PREFIX}gallery"] = int(q.sum()), int(g.sum())
        return out
