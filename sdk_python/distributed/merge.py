"""The shards of a Ray build, in shard order, into the index a one-process build writes.

Why through ``search.build_catalogue_index`` and not a writer of its own: the one-process build
is the definition of the result. The merge hands that very function the catalogue entries and an
"embedder" whose ``embed_report`` returns the shards' vectors, so the ids, their order, the item
metadata, the index info, the ``--skip-bad`` semantics and its error text, the normalisation and
the int8 scales (fitted on the merged vectors, all at once) all come from one place. Only the
vectors' origin differs, and the vectors are the same model's output on the same images.

Memory: the merged float32 block (``N x D x 4`` bytes) is allocated once and filled shard by shard;
the index construction then makes its normalised copy (and, for int8, the codes): about twice
the block at the peak, plus ids and metadata (docs/distributed.md, "Cost").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..embedders import Embedder, EmbeddingReport
from ..gallery_index import GalleryIndex
from ..search import build_catalogue_index
from . import DistributedError
from .plan import BuildPlan, Workdir, load_shard


class MergedEmbeddings:
    """Stands in for the embedder in ``build_catalogue_index``: the model's manifest, file and
    embedding space, with the embeddings already computed by the shards."""

    def __init__(self, embedder: Embedder, report: EmbeddingReport, count: int) -> None:
        self.manifest = embedder.manifest
        self.model_path = embedder.model_path
        self.embedding_space_id = embedder.embedding_space_id
        self.dim = embedder.dim
        self._report = report
        self._count = count

    def embed_report(self, paths: Sequence[Any], batch_size: int = 32, progress: bool = True,
                     desc: str = "embedding") -> EmbeddingReport:
        if len(paths) != self._count:  # the plan's entries, nothing else, may be "embedded" here
            raise DistributedError(f"merge: {len(paths)} catalogue entries but the shards cover {self._count}")
        return self._report


def merged_report(work: Workdir, plan: BuildPlan, done: Mapping[int, dict[str, Any]], dim: int) -> EmbeddingReport:
    """All shards' vectors in shard order (one allocation), global ok indices and bad images."""
    missing = [s.shard_id for s in plan.shards if s.shard_id not in done]
    if missing:
        raise DistributedError(f"{work.path}: {len(missing)} shard(s) are not done (first: {missing[0]}); "
                               "rerun with --resume")
    total = sum(int(done[s.shard_id]["embedded"]) for s in plan.shards)
    vectors = np.empty((total, dim), np.float32)
    ok = np.empty(total, np.int64)
    failures: list[tuple[str, str]] = []
    row = 0
    for shard in plan.shards:
        data = load_shard(work.shards_dir, shard, plan.plan_id, done[shard.shard_id])
        n = data.vectors.shape[0]
        if data.vectors.shape[1] != dim:
            raise DistributedError(f"{work.shards_dir / shard.name}.npy: {data.vectors.shape[1]}-d vectors, "
                                   f"the model gives {dim}-d")
        if row + n > total:
            raise DistributedError(f"{work.shards_dir / shard.name}.done.json: counts disagree with the shard files")
        vectors[row:row + n] = data.vectors
        ok[row:row + n] = data.ok + shard.start
        row += n
        failures += [(str(plan.entries[shard.start + i].path), msg) for i, msg in data.failures]
    if row != total:
        raise DistributedError(f"{work.path}: the done-markers count {total} vectors, the shard files {row}")
    return EmbeddingReport(vectors, ok, failures)


def merge_index(work: Workdir, plan: BuildPlan, done: Mapping[int, dict[str, Any]], embedder: Embedder, *,
                storage: str, skip_bad: bool, info: Mapping[str, Any] | None
                ) -> tuple[GalleryIndex, list[tuple[str, str]]]:
    """The index of the whole catalogue from its shards; the same result as a one-process build."""
    report = merged_report(work, plan, done, embedder.dim)
    stand_in = MergedEmbeddings(embedder, report, len(plan.entries))
    return build_catalogue_index(plan.entries, stand_in, storage=storage, skip_bad=skip_bad,  # type: ignore[arg-type]
                                 progress=False, info=info)


def shard_paths(work: Workdir) -> list[Path]:
    """Every committed shard file (for tests and for ``du``-style accounting in the summary)."""
    return sorted(work.shards_dir.glob("shard-*"))


__all__ = ["MergedEmbeddings", "merge_index", "merged_report"]
