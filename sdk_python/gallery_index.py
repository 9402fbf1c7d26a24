"""``GalleryIndex``: the searchable catalogue (embeddings + product ids + per-item metadata).

The in-memory twin of a ``.dpindex`` file (docs/index-format.md). A loaded index keeps its
vector block memory-mapped and its ids undecoded until first needed, so opening a
million-item catalogue costs a checksum pass and a JSON parse (both skipped with
``verify=False``, which defers the metadata parse to its first use). Editing it (add/remove)
materialises the arrays in memory; ``save`` writes a fresh file atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .exact_search import (
    MAX_COARSE_QUERIES,
    SUBSET_CACHE,
    CoarseCodes,
    CoarsePlan,
    coarse_codes_for,
    coarse_scan_top_k,
    resolve_backend,
    top_k_inner_product,
)
from .index_format import (
    STORAGE_DTYPES,
    EmbeddingSpaceMismatchError,
    IndexFileContents,
    QueryDimensionError,
    read_index_file,
    write_index_file,
)
from .quantization import dequantize, fit_scales, quantize
from .version import __version__

_MISSING = object()
_NORMALISE_ROWS = 1 << 15


@dataclass(frozen=True)
class SearchHit:
    """One result: the gallery item at ``position``, its product and its cosine ``score``."""

    rank: int
    position: int
    product_id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "position": self.position, "product_id": self.product_id,
                "score": self.score, "metadata": self.metadata}


def _filter_key(value: Any) -> tuple:
    """JSON equality as a hashable key: numbers numerically, bools and null as themselves."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(value))
    if isinstance(value, str):
        return ("str", value)
    return ("json", json.dumps(value, sort_keys=True, separators=(",", ":")))


def normalize_rows(vectors: np.ndarray, what: str = "vector") -> np.ndarray:
    """Unit rows in float32 (norms in float64); refuses zero or non-finite rows.

    Works in blocks of rows so a million-item catalogue never needs a float64 copy of itself.
    """
    vectors = np.asarray(vectors)
    out = np.empty(vectors.shape, np.float32)
    for start in range(0, vectors.shape[0], _NORMALISE_ROWS):
        block = np.asarray(vectors[start:start + _NORMALISE_ROWS], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise ValueError(f"{what}s contain NaN or infinity")
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        if np.any(norms == 0):
            raise ValueError(f"{what} {start + int(np.flatnonzero(norms == 0)[0])} is all zeros; "
                             "cannot normalise")
        out[start:start + _NORMALISE_ROWS] = block / norms[:, None]
    return out


class GalleryIndex:
    """Exact cosine search over a product catalogue, stored as float32 or int8 vectors."""

    def __init__(self, dim: int, storage: str = "float32", embedding_space_id: str = "",
                 info: Mapping[str, Any] | None = None, scales: np.ndarray | None = None):
        if storage not in STORAGE_DTYPES:
            raise ValueError(f"unknown storage {storage!r}; expected 'float32' or 'int8'")
        if int(dim) < 1:
            raise ValueError(f"embedding dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.storage = storage
        self.embedding_space_id = embedding_space_id or ""
        self._info: dict[str, Any] = dict(info or {})
        self.path: Path | None = None
        self.checksum_verified = False
        self._vectors: np.ndarray = np.empty((0, self.dim), STORAGE_DTYPES[storage])
        self._scales: np.ndarray | None = None
        self._scales_given = scales is not None
        if scales is not None:
            self._scales = np.asarray(scales, np.float32).reshape(self.dim)
        self._ids: list[str] | None = []
        self._items: list[dict[str, Any]] | None = []
        self._source: IndexFileContents | None = None
        self._columns: dict[str, tuple[np.ndarray, dict[tuple, int]]] = {}
        # Rows of the last few filters (canonical JSON -> sorted positions), cleared with _columns.
        self._filter_rows: dict[str, np.ndarray] = {}
        # Search-side caches, keyed by the identity of what they derive from (edits replace it).
        self._coarse: tuple[np.ndarray, CoarseCodes] | None = None
        self._plans: dict[str, CoarsePlan] = {}
        self._product_codes_cache: tuple[list[str], np.ndarray] | None = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray, product_ids: Sequence[Any],
                        metadata: Sequence[Mapping[str, Any] | None] | None = None, *,
                        storage: str = "float32", embedding_space_id: str = "",
                        info: Mapping[str, Any] | None = None) -> GalleryIndex:
        """Build from (N, D) embeddings; int8 scales are fitted on exactly these vectors."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be (N, D), got shape {embeddings.shape}")
        index = cls(embeddings.shape[1], storage, embedding_space_id, info)
        index.add(embeddings, product_ids, metadata)
        return index

    @classmethod
    def from_images(cls, images: Sequence[Any], product_ids: Sequence[Any], embedder: Any,
                    metadata: Sequence[Mapping[str, Any] | None] | None = None, *,
                    storage: str = "float32", batch_size: int = 32, progress: bool = False,
                    info: Mapping[str, Any] | None = None) -> GalleryIndex:
        """Embed image files/bytes with ``embedder`` (see embedders.py) and index them.

        The embedder's manifest supplies the embedding-space id, so the index can later refuse
        queries from a different model. Catalogue builds that must skip unreadable images use
        ``catalogue.build_catalogue_index`` instead.
        """
        vectors = embedder.embed_paths(list(images), batch_size=batch_size, progress=progress)
        space = getattr(embedder, "embedding_space_id", "")
        return cls.from_embeddings(vectors, product_ids, metadata, storage=storage,
                                   embedding_space_id=space, info=info)

    # ----------------------------------------------------------------- properties
    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return (f"GalleryIndex(count={len(self)}, dim={self.dim}, storage={self.storage!r}, "
                f"embedding_space_id={self.embedding_space_id!r}{where})")

    @property
    def info(self) -> dict[str, Any]:
        """Index-level provenance (the metadata block's ``index`` object), e.g. the model's name."""
        if self._items is None:
            self.metadata  # noqa: B018 -- parsing the metadata block fills it
        return self._info

    @info.setter
    def info(self, value: Mapping[str, Any]) -> None:
        self._info = dict(value)

    @property
    def vectors(self) -> np.ndarray:
        """The stored block (float32 unit rows, or int8 codes); a read-only memmap after ``load``."""
        return self._vectors

    @property
    def scales(self) -> np.ndarray | None:
        return None if self._scales is None else self._scales.copy()

    @property
    def is_memory_mapped(self) -> bool:
        return isinstance(self._vectors, np.memmap)

    @property
    def product_ids(self) -> list[str]:
        if self._ids is None:
            assert self._source is not None
            self._ids = self._source.product_ids()
        return self._ids

    @property
    def metadata(self) -> list[dict[str, Any]]:
        if self._items is None:
            assert self._source is not None
            doc = self._source.metadata()
            self._items = doc["items"]
            self._info = {**doc.get("index", {}), **self._info}
        return self._items

    def dequantized(self) -> np.ndarray:
        """The vectors the scores are dot products with, as float32 (a copy)."""
        if self.storage == "int8":
            assert self._scales is not None
            return dequantize(np.asarray(self._vectors), self._scales)
        return np.array(self._vectors, dtype=np.float32)

    # ----------------------------------------------------------------- editing
    def add(self, embeddings: np.ndarray, product_ids: Sequence[Any],
            metadata: Sequence[Mapping[str, Any] | None] | None = None) -> None:
        """Append items; embeddings are re-normalised, int8 ones quantised with the index's scales."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim == 1:
            embeddings = embeddings[None, :]
        n = embeddings.shape[0]
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise QueryDimensionError(self.path, f"embeddings have shape {embeddings.shape}; "
                                                 f"this index holds {self.dim}-dimensional vectors")
        ids = [str(p) for p in product_ids]
        items = [dict(m or {}) for m in metadata] if metadata is not None else [{} for _ in range(n)]
        if len(ids) != n or len(items) != n:
            raise ValueError(f"{n} embeddings but {len(ids)} product ids and {len(items)} metadata items")
        json.dumps(items, allow_nan=False)  # refuse what the file could not store now, not at save
        unit = normalize_rows(embeddings, "embedding")
        if self.storage == "int8":
            if self._scales is None or (len(self) == 0 and not self._scales_given):
                self._scales = fit_scales(unit)  # fitted on the first vectors an empty index receives
            stored, clipped = quantize(unit, self._scales)
            if clipped:
                warnings.warn(f"{clipped} values of the added embeddings exceed the index's int8 range "
                              "and were clipped; rebuild the index to refit the scales", stacklevel=2)
        else:
            stored = unit
        old_ids, old_items = self.product_ids, self.metadata
        self._vectors = np.concatenate([np.asarray(self._vectors), stored]) if len(self) else stored
        self._ids = old_ids + ids
        self._items = old_items + items
        self._columns.clear()
        self._filter_rows.clear()

    def remove(self, product_ids: Sequence[Any] | None = None, *,
               positions: Sequence[int] | np.ndarray | None = None) -> int:
        """Drop every item of the given products and/or the given positions; returns how many."""
        drop = np.zeros(len(self), bool)
        if product_ids is not None:
            wanted = np.asarray([str(p) for p in product_ids], dtype=object)
            drop |= np.isin(np.asarray(self.product_ids, dtype=object), wanted)
        if positions is not None:
            pos = np.asarray(positions, dtype=np.int64)
            if pos.size and (pos.min() < 0 or pos.max() >= len(self)):
                raise IndexError(f"positions out of range for an index of {len(self)} items")
            drop[pos] = True
        removed = int(drop.sum())
        if removed:
            keep = np.flatnonzero(~drop)
            ids, items = self.product_ids, self.metadata
            self._vectors = np.asarray(self._vectors)[keep]
            self._ids = [ids[i] for i in keep.tolist()]
            self._items = [items[i] for i in keep.tolist()]
            self._columns.clear()
            self._filter_rows.clear()
        return removed

    # ----------------------------------------------------------------- compatibility
    def check_embedding_space(self, space_id: str | None, model: str = "the querying model") -> None:
        """Refuse a model whose embedding space differs from the one that built this index."""
        if space_id and self.embedding_space_id and space_id != self.embedding_space_id:
            raise EmbeddingSpaceMismatchError(
                self.path, f"built in embedding space {self.embedding_space_id!r} but {model} produces "
                           f"{space_id!r}; rebuild the index with this model (dp-search build)")

    # ----------------------------------------------------------------- search
    def prepare_queries(self, queries: np.ndarray) -> np.ndarray:
        """Queries -> the (Q, D) float32 weights the scan multiplies with (docs: "Scoring")."""
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            got = q.shape[-1] if q.ndim else "a scalar"
            raise QueryDimensionError(self.path, f"query has dimension {got} but the index holds "
                                                 f"{self.dim}-dimensional embeddings (wrong model?)")
        if q.shape[0] == 1:  # one query (the phone/server case): normalize_rows' arithmetic, fewer calls
            q64 = q[0].astype(np.float32, copy=False).astype(np.float64)  # float32 first, as below
            norm = math.sqrt(float(q64 @ q64))  # float32 inputs cannot overflow float64 squares
            if not math.isfinite(norm):
                raise ValueError("querys contain NaN or infinity")
            if norm == 0:
                raise ValueError("query 0 is all zeros; cannot normalise")
            qn = (q64 / norm).astype(np.float32)[None, :]
        else:
            qn = normalize_rows(q.astype(np.float32, copy=False), "query")
        if self.storage == "int8":
            assert self._scales is not None or len(self) == 0
            scales = self._scales if self._scales is not None else np.full(self.dim, 1 / 127, np.float32)
            return qn * scales
        return qn

    def filter_rows(self, filter: Mapping[str, Any] | None) -> np.ndarray | None:
        """Sorted positions whose metadata match every ``field: value`` (value list = any of)."""
        if not filter:
            return None
        keep = np.ones(len(self), bool)
        for name, wanted in filter.items():
            codes, lookup = self._column(name)
            values = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            wanted_codes = [lookup[k] for k in map(_filter_key, values) if k in lookup]
            if len(wanted_codes) == 1:  # the common case: one comparison pass, ~4x faster than isin
                keep &= codes == wanted_codes[0]
            else:
                keep &= np.isin(codes, np.asarray(wanted_codes, dtype=np.int32))
        return np.flatnonzero(keep)

    def _column(self, name: str) -> tuple[np.ndarray, dict[tuple, int]]:
        # Factorised once per field and cached, so each filtered search is one np.isin.
        if name not in self._columns:
            lookup: dict[tuple, int] = {}
            codes = np.fromiter(
                (-1 if (v := item.get(name, _MISSING)) is _MISSING
                 else lookup.setdefault(_filter_key(v), len(lookup)) for item in self.metadata),
                dtype=np.int32, count=len(self))
            self._columns[name] = (codes, lookup)
        return self._columns[name]

    def search_arrays(self, queries: np.ndarray, k: int = 5, filter: Mapping[str, Any] | None = None,
                      threads: int | None = 1, *, unique_products: bool = False,
                      backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32, positions int64), each (Q, min(k, eligible)), best first.

        ``unique_products``: the top k *distinct products*, each scored by its best image (the
        returned position); (Q, min(k, distinct eligible products)). ``backend``: "auto" (None),
        "numpy" or a SIMD backend name (exact_search.BACKENDS); every backend returns the same
        ids, and scores equal within float32 rounding.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not filter and not unique_products and type(queries) is np.ndarray and 0 < queries.ndim <= 2 \
                and queries.size == queries.shape[-1] == self.dim:
            # The common single-query case (a phone, a server request): one cached plan, no filter.
            plan = self._plan(backend)
            if plan is not None:
                return plan.search_one(self._prepare_one(queries), int(k))
        weights = self.prepare_queries(queries)
        key = _filter_cache_key(filter) if filter else None
        rows = self._filter_rows.get(key) if key is not None else None
        if rows is None:
            # A repeated filter (a user browsing one category) reuses its rows: on a 100k gallery
            # the comparison pass costs about as much as the packed 10% scan itself.
            rows = self.filter_rows(filter)
            if key is not None and rows is not None:
                rows.flags.writeable = False
                if len(self._filter_rows) >= SUBSET_CACHE:
                    del self._filter_rows[next(iter(self._filter_rows))]  # oldest first
                self._filter_rows[key] = rows
        key = None if rows is None else key
        if unique_products:
            return self._product_top_k(weights, int(k), rows, threads, backend, key)
        return self._top_k(weights, int(k), rows, threads, backend, key)

    def _top_k(self, weights: np.ndarray, k: int, rows: np.ndarray | None, threads: int | None,
               backend: str | None, rows_key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        name = resolve_backend(backend, len(self))
        if name != "numpy" and 0 < weights.shape[0] <= MAX_COARSE_QUERIES and len(self):
            if rows is None:
                plan = self._plan(name)
                assert plan is not None
                return plan.search(weights, k)
            return coarse_scan_top_k(self._vectors, self.coarse_codes(), weights, k, rows=rows, backend=name,
                                     rows_key=rows_key)
        return top_k_inner_product(self._vectors, weights, k, rows=rows, threads=threads)

    def _prepare_one(self, query: np.ndarray) -> np.ndarray:
        """``prepare_queries`` for one query of ``dim`` values, as a (D,) row: the same arithmetic."""
        q64 = query.reshape(-1).astype(np.float32, copy=False).astype(np.float64)
        norm = math.sqrt(float(q64 @ q64))
        if not math.isfinite(norm):
            raise ValueError("querys contain NaN or infinity")
        if norm == 0:
            raise ValueError("query 0 is all zeros; cannot normalise")
        qn = (q64 / norm).astype(np.float32)
        return qn * self._scales if self.storage == "int8" and self._scales is not None else qn

    def _plan(self, backend: str | None) -> CoarsePlan | None:
        """The cached unfiltered accelerated scan for ``backend`` (None: numpy, or an empty index)."""
        if not len(self):
            return None
        name = resolve_backend(backend, len(self))
        if name == "numpy":
            return None
        plan = self._plans.get(name)
        if plan is None or plan.vectors is not self._vectors:
            if plan is not None:
                self._plans.clear()
            plan = self._plans[name] = CoarsePlan(self._vectors, self.coarse_codes(), name)
        return plan

    def coarse_codes(self) -> CoarseCodes:
        """Stage-1 codes of the accelerated scan: int8 storage's own codes, or an int8 shadow of
        float32 storage (a quarter of its size, built on first use and kept; docs/sdk.md)."""
        if self._coarse is None or self._coarse[0] is not self._vectors:
            self._coarse = (self._vectors, coarse_codes_for(self._vectors))
        return self._coarse[1]

    def product_codes(self) -> np.ndarray:
        """int32 code per position, equal for equal product ids (cached until the ids change)."""
        ids = self.product_ids
        if self._product_codes_cache is None or self._product_codes_cache[0] is not ids:
            lookup: dict[str, int] = {}
            codes = np.fromiter((lookup.setdefault(p, len(lookup)) for p in ids), dtype=np.int32, count=len(ids))
            self._product_codes_cache = (ids, codes)
        return self._product_codes_cache[1]

    def _product_top_k(self, weights: np.ndarray, k: int, rows: np.ndarray | None, threads: int | None,
                       backend: str | None, rows_key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top k distinct products: deepen the item search until each query sees k products.

        Products rank by their first item in the item ranking (score desc, position asc), which
        is their best image; once k distinct products appear among the top ``depth`` items, no
        product outside them can outrank them. All queries share the eligible rows, so when the
        search reaches every eligible item each finds the same number of products.
        """
        codes = self.product_codes()
        eligible = len(self) if rows is None else len(rows)
        depth = min(eligible, max(4 * k, 16))
        while True:
            scores, positions = self._top_k(weights, depth, rows, threads, backend, rows_key)
            picks = [_first_distinct(codes[prow], k) for prow in positions]
            if depth >= eligible or min((len(p) for p in picks), default=k) >= k:
                break
            depth = min(eligible, depth * 4)
        width = min((len(p) for p in picks), default=0)
        take = np.array([p[:width] for p in picks], dtype=np.int64).reshape(len(picks), width)
        return np.take_along_axis(scores, take, 1), np.take_along_axis(positions, take, 1)

    def search(self, queries: np.ndarray, k: int = 5, filter: Mapping[str, Any] | None = None,
               threads: int | None = 1, *, unique_products: bool = False,
               backend: str | None = None) -> list[SearchHit] | list[list[SearchHit]]:
        """Top-k hits; one list for a 1-D query, a list of lists for a (Q, D) batch.

        ``unique_products=True``: one hit per product (its best-matching image), k products.
        """
        single = np.ndim(queries) == 1
        scores, positions = self.search_arrays(queries, k, filter, threads, unique_products=unique_products,
                                               backend=backend)
        ids, items = self.product_ids, self.metadata
        results = [
            [SearchHit(rank + 1, int(p), ids[p], float(s), items[p])
             for rank, (s, p) in enumerate(zip(srow.tolist(), prow.tolist(), strict=True))]
            for srow, prow in zip(scores, positions, strict=True)
        ]
        return results[0] if single else results

    # ----------------------------------------------------------------- files
    def save(self, path: str | os.PathLike, info: Mapping[str, Any] | None = None) -> Path:
        """Write a ``.dpindex`` atomically; the previous file survives any failure before the rename."""
        doc_info = {**self.info, "created_by": f"deepproduct {__version__}",
                    "created_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    **(info or {})}
        scales = self._scales
        if self.storage == "int8" and scales is None:
            scales = np.full(self.dim, 1 / 127, np.float32)
        write_index_file(path, vectors=self._vectors, product_ids=self.product_ids, items=self.metadata,
                         embedding_space_id=self.embedding_space_id, storage=self.storage,
                         scales=scales, info=doc_info)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, expected_space_id: str | None = None,
             verify: bool = True, mmap: bool = True) -> GalleryIndex:
        """Open a ``.dpindex``: vectors memory-mapped, checksum verified unless ``verify=False``."""
        contents = read_index_file(path, verify=verify, mmap=mmap)
        h = contents.header
        index = cls(h.dim, h.storage, contents.embedding_space_id, scales=contents.scales)
        index._scales_given = False  # an empty loaded index refits on its first add
        index.path = Path(path)
        index.checksum_verified = contents.checksum_verified
        index._vectors = contents.vectors
        index._source = contents
        index._ids = None
        index._items = None
        if verify:
            index.metadata  # noqa: B018 -- validate the JSON now so a bad file fails at load time
        index.check_embedding_space(expected_space_id)
        return index


def _filter_cache_key(filter: Mapping[str, Any] | None) -> str | None:
    """The filter as canonical JSON (values as the filter compares them), or None if it has none."""
    try:
        return json.dumps({name: sorted(map(_filter_key, v)) if isinstance(v, (list, tuple, set, frozenset))
                           else [_filter_key(v)] for name, v in (filter or {}).items()}, sort_keys=True)
    except TypeError:
        return None  # an unhashable, unsortable value: no caching, same results


def _first_distinct(codes: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first occurrence of each distinct code, in order, at most ``k``."""
    _, first = np.unique(codes, return_index=True)
    first.sort()
    return first[:k]


def estimate_bytes(count: int, dim: int, storage: str) -> int:
    """Size of the vector block alone (what a phone must map), for sizing decisions."""
    return int(count) * int(dim) * STORAGE_DTYPES[storage].itemsize if count else 0


__all__ = ["GalleryIndex", "SearchHit", "normalize_rows", "estimate_bytes"]
