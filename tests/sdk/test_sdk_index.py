"""GalleryIndex: exact search against brute-force references, the file round trip, bad input."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from deepproduct.sdk import exact_search
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import (
    ChecksumError,
    EmbeddingSpaceMismatchError,
    IndexFileError,
    QueryDimensionError,
    TruncatedIndexError,
    UnsupportedVersionError,
    crc32_update,
    read_index_file,
)

CATS = ["mug", "shoe", "hat"]


def _random_index(storage: str, n: int = 3000, dim: int = 32, seed: int = 0) -> tuple[GalleryIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [f"p{i // 3}" for i in range(n)]
    meta = [{"category": CATS[i % 3], "n": i % 7} for i in range(n)]
    index = GalleryIndex.from_embeddings(emb, ids, meta, storage=storage, embedding_space_id="space-a")
    return index, rng.standard_normal((9, dim)).astype(np.float32)


def _brute_force(index: GalleryIndex, queries: np.ndarray, k: int, rows: np.ndarray | None = None):
    """numpy reference: float64 dot products with the documented float32 weights, lexsorted."""
    weights = index.prepare_queries(queries).astype(np.float64)
    scores = weights @ np.asarray(index.vectors, dtype=np.float64).T
    eligible = np.arange(len(index)) if rows is None else rows
    out_s, out_p = [], []
    for row in scores:
        s = row[eligible]
        order = np.lexsort((eligible, -s))[:k]
        out_s.append(s[order])
        out_p.append(eligible[order])
    return np.array(out_s), np.array(out_p)


@pytest.mark.parametrize("storage", ["float32", "int8"])
@pytest.mark.parametrize("filt", [None, {"category": "mug"}, {"category": ["hat", "shoe"], "n": 3}])
def test_search_equals_brute_force(storage, filt):
    index, queries = _random_index(storage)
    rows = index.filter_rows(filt)
    ref_s, ref_p = _brute_force(index, queries, 10, rows)
    for block in (None, 64, 1000):  # several blocks exercise the running-threshold merge
        s, p = exact_search.top_k_inner_product(index.vectors, index.prepare_queries(queries), 10,
                                                rows=rows, block_rows=block)
        np.testing.assert_array_equal(p, ref_p)
        np.testing.assert_allclose(s, ref_s, atol=1e-6)
    hits = index.search(queries, k=10, filter=filt)
    assert [[h.position for h in row] for row in hits] == ref_p.tolist()
    if filt:
        for row in hits:
            assert all(h.metadata["category"] in np.atleast_1d(filt["category"]) for h in row)


def test_int8_scores_are_dequantised_dot_products_and_close_to_float32():
    f32, queries = _random_index("float32", n=500)
    i8, _ = _random_index("int8", n=500)
    qn = f32.prepare_queries(queries)
    s8, p8 = i8.search_arrays(queries, k=500)
    deq = i8.dequantized().astype(np.float64)
    np.testing.assert_allclose(s8, np.take_along_axis(qn.astype(np.float64) @ deq.T, p8, 1), atol=1e-6)
    s32, _ = f32.search_arrays(queries, k=1)
    assert np.abs(s8[:, 0] - s32[:, 0]).max() < 0.02


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_faiss_agrees(storage):
    faiss = pytest.importorskip("faiss")
    index, queries = _random_index(storage)
    base = np.ascontiguousarray(index.dequantized())
    flat = faiss.IndexFlatIP(index.dim)
    flat.add(base)
    ref_s, ref_p = flat.search(np.ascontiguousarray(index.prepare_queries(queries) /
                                                    (index.scales if storage == "int8" else 1)), 10)
    s, p = index.search_arrays(queries, k=10)
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_allclose(s, ref_s, atol=1e-5)


def test_ties_break_by_position_and_adversarial_order():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((1, 8)).astype(np.float32)
    emb = np.repeat(base, 50, axis=0)  # all equal: the first k positions must win
    index = GalleryIndex.from_embeddings(emb, [str(i) for i in range(50)])
    _, p = exact_search.top_k_inner_product(index.vectors, index.prepare_queries(base), 5, block_rows=7)
    assert p.tolist() == [[0, 1, 2, 3, 4]]
    # Increasing scores along the file: every block beats the threshold (worst case for pruning).
    q = np.eye(8, dtype=np.float32)[:1]
    ramp = np.zeros((400, 8), np.float32)
    ramp[:, 0] = np.linspace(0.1, 1, 400)
    ramp[:, 1] = 1
    s, p = exact_search.top_k_inner_product(GalleryIndex.from_embeddings(ramp, ["x"] * 400).vectors, q, 3,
                                            block_rows=16)
    assert p.tolist() == [[399, 398, 397]]


def test_k_larger_than_gallery_and_empty_results():
    index, queries = _random_index("float32", n=7)
    s, p = index.search_arrays(queries, k=50)
    assert p.shape == (9, 7) and sorted(p[0].tolist()) == list(range(7))
    assert index.search(queries[0], k=5, filter={"category": "nope"}) == []
    empty = GalleryIndex(32, "int8")
    assert empty.search(queries, k=3) == [[] for _ in range(9)]


def test_add_and_remove():
    index, queries = _random_index("int8", n=30)
    extra = np.random.default_rng(9).standard_normal((2, 32)).astype(np.float32)
    with pytest.warns(UserWarning, match="clipped"):  # 30 items rarely span every dimension's range
        index.add(extra, ["new-a", "new-b"], [{"category": "lamp"}, None])
    assert len(index) == 32 and index.product_ids[-1] == "new-b" and index.metadata[-1] == {}
    hit = index.search(extra[0], k=1)[0]
    assert hit.product_id == "new-a" and hit.score > 0.99
    assert index.search(queries[0], k=3, filter={"category": "lamp"})[0].product_id == "new-a"
    assert index.remove(["p0", "new-a"]) == 4
    assert "p0" not in index.product_ids and "new-a" not in index.product_ids and len(index) == 28
    assert index.remove(positions=[0]) == 1 and len(index) == 27
    with pytest.raises(QueryDimensionError):
        index.add(np.ones((1, 5)), ["bad"])


def test_round_trip_is_memory_mapped_and_identical(tmp_path):
    for storage in ("float32", "int8"):
        index, queries = _random_index(storage, n=500)
        path = index.save(tmp_path / f"g-{storage}.dpindex")
        loaded = GalleryIndex.load(path, expected_space_id="space-a")
        assert loaded.is_memory_mapped and isinstance(loaded.vectors, np.memmap)
        assert loaded.checksum_verified
        assert loaded.product_ids == index.product_ids and loaded.metadata == index.metadata
        a_s, a_p = index.search_arrays(queries, 8, {"category": "hat"})
        b_s, b_p = loaded.search_arrays(queries, 8, {"category": "hat"})
        np.testing.assert_array_equal(a_p, b_p)
        np.testing.assert_array_equal(a_s, b_s)
        assert loaded.info["created_by"].startswith("deepproduct")
        # saving a loaded (memory-mapped) index over itself is safe: a new file is renamed in
        loaded.save(path)
        assert GalleryIndex.load(path).product_ids == index.product_ids


@pytest.fixture()
def saved(tmp_path) -> Path:
    index, _ = _random_index("float32", n=64)
    return index.save(tmp_path / "g.dpindex")


def test_truncated(saved):
    data = saved.read_bytes()
    for cut in (5, 100, len(data) // 2, len(data) - 1):
        saved.write_bytes(data[:cut])
        with pytest.raises(TruncatedIndexError, match="g.dpindex") as err:
            GalleryIndex.load(saved)
        assert isinstance(err.value, ValueError)


def test_bad_checksum(saved):
    data = bytearray(saved.read_bytes())
    offset = struct.unpack_from("<Q", data, 104)[0]
    data[offset + 3] ^= 0x10
    saved.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        GalleryIndex.load(saved)
    assert len(GalleryIndex.load(saved, verify=False)) == 64  # explicitly unverified still opens


def test_newer_version(saved):
    data = bytearray(saved.read_bytes())
    struct.pack_into("<H", data, 8, 7)
    struct.pack_into("<I", data, 252, crc32_update(0, bytes(data[:252])))
    saved.write_bytes(bytes(data))
    with pytest.raises(UnsupportedVersionError, match="version 7 is newer"):
        GalleryIndex.load(saved)


def test_not_an_index_and_damaged_header(saved, tmp_path):
    other = tmp_path / "x.dpindex"
    other.write_bytes(b"hello world, definitely not an index" * 10)
    with pytest.raises(IndexFileError, match="not a DeepProduct gallery index"):
        GalleryIndex.load(other)
    data = bytearray(saved.read_bytes())
    data[16] ^= 1  # dim
    saved.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="header"):
        GalleryIndex.load(saved)


def test_embedding_space_mismatch_and_query_dimension(saved):
    with pytest.raises(EmbeddingSpaceMismatchError, match="space-a") as err:
        GalleryIndex.load(saved, expected_space_id="space-b")
    assert "g.dpindex" in str(err.value)
    index = GalleryIndex.load(saved)
    with pytest.raises(QueryDimensionError, match="dimension 31") as err:
        index.search(np.ones(31, np.float32))
    assert "g.dpindex" in str(err.value)
    with pytest.raises(ValueError, match="zeros"):
        index.search(np.zeros(32, np.float32))


def test_interrupted_write_leaves_previous_file(saved, monkeypatch):
    before = saved.read_bytes()
    index, _ = _random_index("int8", n=100, seed=5)
    from deepproduct.sdk import index_format

    def boom(*args, **kwargs):
        yield memoryview(b"\x00" * 64)
        raise KeyboardInterrupt("simulated Ctrl-C half-way through the vector block")

    monkeypatch.setattr(index_format, "_vector_chunks", boom)
    with pytest.raises(KeyboardInterrupt):
        index.save(saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == ["g.dpindex"]  # no temp file left behind
    assert len(GalleryIndex.load(saved)) == 64


def test_header_fields(saved):
    contents = read_index_file(saved)
    h = contents.header
    assert (h.format_version, h.dim, h.storage, h.count) == (1, 32, "float32", 64)
    assert h.sections["vectors"].offset % 64 == 0
    assert h.file_size == os.path.getsize(saved)


def test_empty_int8_index_fits_scales_on_first_add(tmp_path):
    path = GalleryIndex(8, "int8").save(tmp_path / "empty.dpindex")
    index = GalleryIndex.load(path)
    emb = np.random.default_rng(1).standard_normal((20, 8)).astype(np.float32)
    index.add(emb, [str(i) for i in range(20)])
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(index.scales, np.abs(unit).max(0) / 127, rtol=1e-6)
    assert index.search(emb[3], k=1)[0].product_id == "3"


def test_huge_k_is_clamped_to_the_item_count():
    """Issue 19: k far above the item count returns every item without a k-sized allocation
    (the JVM core once sized TopK by k and died with OutOfMemoryError; every core clamps now)."""
    vectors = Path(__file__).resolve().parents[1] / "vectors" / "index"
    index = GalleryIndex.load(vectors / "float32.dpindex")
    q = np.random.default_rng(0).standard_normal(index.dim).astype(np.float32)
    every = index.search(q, k=len(index))
    for k in (100_000_000, 2**62):
        assert [h.position for h in index.search(q, k=k)] == [h.position for h in every]
        assert len(index.search(q, k=k, unique_products=True)) == len(set(index.product_ids))
    empty = GalleryIndex.load(vectors / "empty.dpindex")
    assert empty.search(np.ones(empty.dim, np.float32), k=100_000_000) == []
