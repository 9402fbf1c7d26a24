"""``ProductSearch``: photo in, products out -- the whole on-device pipeline in one object.

It exists so that the one thing that silently ruins retrieval, querying an index with a
model from another embedding space, is checked once, at construction, instead of by every
caller. Also here: building an index from a catalogue (with bad-image handling) and the
consumer-to-shop Recall@K computed through exactly this path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .catalogue import CatalogueEntry, CatalogueError, format_failures
from .embedders import Embedder, load_embedder
from .gallery_index import GalleryIndex, SearchHit
from .metrics import recall_from_ranking
from .preprocessing import ImageSource


class ProductSearch:
    """An embedder and a gallery index from the same embedding space."""

    def __init__(self, embedder: Embedder, index: GalleryIndex):
        index.check_embedding_space(embedder.embedding_space_id, model=str(embedder.model_path))
        if index.dim != embedder.dim:
            raise ValueError(f"{index.path}: index dimension {index.dim} != model dimension {embedder.dim}")
        self.embedder = embedder
        self.index = index

    @classmethod
    def open(cls, model: str | os.PathLike, index: str | os.PathLike, *, format: str = "onnx",
             precision: str = "fp32", threads: int | None = None, verify: bool = True) -> ProductSearch:
        embedder = load_embedder(model, format=format, precision=precision, threads=threads)
        gallery = GalleryIndex.load(index, expected_space_id=embedder.embedding_space_id, verify=verify)
        return cls(embedder, gallery)

    def search_images(self, images: Sequence[ImageSource], k: int = 5,
                      filter: Mapping[str, Any] | None = None, *,
                      unique_products: bool = False) -> list[list[SearchHit]]:
        """Top k per photo; ``unique_products``: k distinct products, each with its best image."""
        return self.index.search(self.embedder.embed(images), k=k, filter=filter, unique_products=unique_products)

    def search_image(self, image: ImageSource, k: int = 5, filter: Mapping[str, Any] | None = None, *,
                     unique_products: bool = False) -> list[SearchHit]:
        return self.search_images([image], k, filter, unique_products=unique_products)[0]


def build_catalogue_index(entries: Sequence[CatalogueEntry], embedder: Embedder, *, storage: str = "float32",
                          skip_bad: bool = False, batch_size: int = 32, progress: bool = True,
                          info: Mapping[str, Any] | None = None
                          ) -> tuple[GalleryIndex, list[tuple[str, str]]]:
    """Embed a catalogue into an index; returns it with the (path, problem) list of skipped images.

    Without ``skip_bad`` any unreadable image raises :class:`CatalogueError` listing all of
    them, before anything is written.
    """
    report = embedder.embed_report([e.path for e in entries], batch_size=batch_size, progress=progress,
                                   desc="indexing")
    if report.failures and not skip_bad:
        raise CatalogueError(f"{len(report.failures)} of {len(entries)} catalogue images could not be read "
                             f"(nothing was written; fix them or pass --skip-bad):\n"
                             f"{format_failures(report.failures)}")
    kept = [entries[i] for i in report.ok_indices.tolist()]
    if not kept:
        raise CatalogueError("no readable catalogue images; nothing was written")
    model = embedder.manifest
    index_info = {"model": {"name": model.model_name, "version": model.model_version,
                            "file": Path(embedder.model_path).name},
                  "skipped_images": len(report.failures), **(info or {})}
    index = GalleryIndex.from_embeddings(report.embeddings, [e.product_id for e in kept],
                                         [e.metadata for e in kept], storage=storage,
                                         embedding_space_id=embedder.embedding_space_id, info=index_info)
    return index, report.failures


def recall_at_k(index: GalleryIndex, query_embeddings: np.ndarray, query_products: Sequence[str],
                ks: Sequence[int] = (1, 5, 10), filter: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Consumer-to-shop Recall@K through the index (docs/method.md section 5).

    The share of queries with an item of their product among the top K items, over the
    queries whose product is in the gallery at all (the others are counted in
    ``unmatched_queries``), as the training-side evaluation does. ``product_recall@K`` is the
    same over the top K *distinct products* (what a shopper sees when results are products):
    never lower, and equal when every product has one image.
    """
    ks = sorted({int(k) for k in ks})
    gallery_products = np.asarray(index.product_ids, dtype=object)
    labels = np.asarray([str(p) for p in query_products], dtype=object)
    matched = np.isin(labels, np.unique(gallery_products)) if len(gallery_products) else np.zeros(len(labels), bool)
    out: dict[str, float] = {"queries": float(len(labels)), "unmatched_queries": float((~matched).sum())}
    if not matched.any():
        out.update({f"{prefix}recall@{k}": float("nan") for k in ks for prefix in ("", "product_")})
        return out
    queries = np.asarray(query_embeddings)[matched]
    for prefix, unique in (("", False), ("product_", True)):
        _, positions = index.search_arrays(queries, k=ks[-1], filter=filter, unique_products=unique)
        out.update(recall_from_ranking(gallery_products[positions], labels[matched], ks, prefix))
    return out
