"""The int8 MatMulInteger scan prototype returns the SDK's own int8 top-k (it re-scores exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from deepproduct.benchmarks import int8_scan_prototype as proto
from deepproduct.benchmarks.search_bench import clustered_unit_vectors, make_queries
from deepproduct.sdk.gallery_index import GalleryIndex


@pytest.mark.parametrize("batch", [1, 5])
def test_prototype_matches_sdk_int8(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    monkeypatch.setattr(proto, "_FIRST_BLOCK", 64)  # many blocks, a ragged last one
    monkeypatch.setattr(proto, "_BLOCK_ROWS", 700)
    data = clustered_unit_vectors(5003, 32, seed=3, per_cluster=50)
    index = GalleryIndex.from_embeddings(data, [str(i) for i in range(len(data))], storage="int8")
    queries = make_queries(data, batch, seed=4)
    want_s, want_p = index.search_arrays(queries, 10)
    got_s, got_p = proto.OrtInt8Scan(index).search(queries, 10)
    np.testing.assert_array_equal(got_p, want_p)
    np.testing.assert_allclose(got_s, want_s, atol=1e-5)


def test_prototype_refuses_float_indexes() -> None:
    index = GalleryIndex.from_embeddings(np.eye(4, dtype=np.float32), list("abcd"))
    with pytest.raises(ValueError, match="int8"):
        proto.OrtInt8Scan(index)
