"""Accelerated (two-stage int8 SIMD) search == numpy fallback, and product-level search.

The accelerated backends are an optional extra (``deepproduct[fast-search]``, part of the dev
install); the comparisons run for every backend installed, and the numpy path is always
compared against a float64 brute force.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepproduct.sdk import exact_search
from deepproduct.sdk.gallery_index import GalleryIndex

SIMD = [b for b in exact_search.available_backends() if b != "numpy"]


def test_without_simd_backends_auto_falls_back_to_numpy(monkeypatch):
    monkeypatch.setattr(exact_search, "_loaded", {name: None for name in exact_search.BACKENDS})
    monkeypatch.delenv("DEEPPRODUCT_SEARCH_BACKEND", raising=False)
    assert exact_search.available_backends() == ["numpy"] and exact_search.resolve_backend(None) == "numpy"
    index = _index("int8", np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32))
    assert index.search(np.ones(8), 3)[0].rank == 1
    with pytest.raises(ValueError, match="not installed"):
        exact_search.resolve_backend("simsimd")


def _index(storage: str, emb: np.ndarray, per_product: int = 3, meta: bool = True) -> GalleryIndex:
    n = len(emb)
    items = [{"category": ["mug", "hat", "bag", "shoe", "lamp", "cup", "pen", "box", "jar", "cap"][i % 10]}
             for i in range(n)] if meta else None
    return GalleryIndex.from_embeddings(emb, [f"p{i // per_product}" for i in range(n)], items, storage=storage)


def _reference(index: GalleryIndex, queries: np.ndarray, k: int, rows: np.ndarray | None = None):
    """float64 brute force with the documented weights, lexsorted (score desc, position asc)."""
    w = index.prepare_queries(queries).astype(np.float64)
    scores = w @ np.asarray(index.vectors, np.float64).T
    eligible = np.arange(len(index)) if rows is None else rows
    out = []
    for row in scores:
        order = np.lexsort((eligible, -row[eligible]))[:k]
        out.append((row[eligible][order], eligible[order]))
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def _assert_ranking(p, s, want_p, want_s, gap: float = 1e-6):
    """Equal positions, except that items whose reference scores are within ``gap`` (float32
    rounding of a near-tie) may swap among themselves; scores equal within float32 rounding."""
    p, s, want_p, want_s = map(np.atleast_2d, (p, s, want_p, want_s))
    assert p.shape == want_p.shape
    np.testing.assert_allclose(s, want_s, atol=1e-5, rtol=0)
    for prow, wrow, wsrow in zip(p, want_p, want_s, strict=True):
        near = np.zeros(len(wrow), bool)
        close = np.abs(np.diff(wsrow)) < gap
        near[1:] |= close
        near[:-1] |= close
        np.testing.assert_array_equal(prow[~near], wrow[~near])
        assert sorted(prow[near].tolist()) == sorted(wrow[near].tolist()) or near[-1]


def _assert_same(index, queries, k, filt=None):
    """Every SIMD backend: exactly the float64 reference; numpy: the same up to float32 near-ties."""
    ref_s, ref_p = _reference(index, queries, k, index.filter_rows(filt))
    np_s, np_p = index.search_arrays(queries, k, filt, backend="numpy")
    _assert_ranking(np_p, np_s, ref_p, ref_s)
    for backend in SIMD:
        s, p = index.search_arrays(queries, k, filt, backend=backend)
        np.testing.assert_array_equal(p, ref_p)
        np.testing.assert_allclose(s, ref_s, atol=1e-6, rtol=0)
        _assert_ranking(p, s, np_p, np_s)
    return ref_s, ref_p


@pytest.mark.parametrize("storage", ["float32", "int8"])
@pytest.mark.parametrize("dim", [16, 128, 130])
def test_random_clustered_and_filtered(storage, dim):
    rng = np.random.default_rng(dim)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    emb = centres[rng.integers(0, 40, 5000)] + 0.3 * rng.standard_normal((5000, dim)).astype(np.float32)
    emb[::97] *= 40  # extreme norms (normalised away) and extreme per-dimension values below
    emb[5, 3] = 1e4
    index = _index(storage, emb)
    queries = emb[rng.integers(0, 5000, 3)] + 0.1 * rng.standard_normal((3, dim)).astype(np.float32)
    for k, filt in [(1, None), (10, None), (37, {"category": "mug"}), (10, {"category": ["hat", "pen"]})]:
        _assert_same(index, queries, k, filt)


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_ties_duplicates_and_k_beyond_gallery(storage):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((1, 24)).astype(np.float32)
    emb = np.repeat(base, 300, axis=0)  # every score ties: positions 0..k-1 must win
    emb[150:] = rng.standard_normal((150, 24)).astype(np.float32)
    emb[290] = base[0]
    index = _index(storage, emb)
    s, p = _assert_same(index, base, 12)
    assert p[0].tolist() == list(range(12))
    _, p = _assert_same(index, base, 500)  # k > N: the whole ranking, ties in position order
    assert p.shape == (1, 300) and p[0, 150] == 290
    _, p = _assert_same(index, -base, 5)
    _assert_same(index, np.vstack([base, -base, base * 7]), 3)  # several queries, one scan each


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_empty_filters_and_empty_index(storage):
    rng = np.random.default_rng(2)
    index = _index(storage, rng.standard_normal((200, 8)).astype(np.float32))
    q = rng.standard_normal((2, 8)).astype(np.float32)
    for backend in SIMD + ["numpy"]:
        s, p = index.search_arrays(q, 5, {"category": "none-such"}, backend=backend)
        assert s.shape == p.shape == (2, 0)
        assert index.search(q[0], 5, {"category": "none-such"}, backend=backend) == []
        assert index.search(q[0], 5, {"category": "none-such"}, backend=backend, unique_products=True) == []
    empty = GalleryIndex(8, storage)
    assert empty.search(q, 3) == [[], []]
    assert empty.search(q, 3, unique_products=True) == [[], []]


def test_ramp_defeats_pruning_and_stays_exact():
    # Scores increase along the file: every block beats the running threshold.
    ramp = np.zeros((40000, 8), np.float32)
    ramp[:, 0] = np.linspace(0.1, 1, 40000)
    ramp[:, 1] = 1
    index = _index("float32", ramp, meta=False)
    _, p = _assert_same(index, np.eye(8, dtype=np.float32)[:1], 3)
    assert p.tolist() == [[39999, 39998, 39997]]


def test_edits_rebuild_the_shadow():
    rng = np.random.default_rng(4)
    index = _index("float32", rng.standard_normal((100, 16)).astype(np.float32), meta=False)
    q = rng.standard_normal(16).astype(np.float32)
    index.search(q, 3)
    index.add(q[None, :] * 5, ["new"])
    for backend in SIMD + ["numpy"]:
        assert index.search(q, 1, backend=backend)[0].product_id == "new"
    index.remove(["new"])
    assert all(h.product_id != "new" for h in index.search(q, 5))


def test_unknown_or_missing_backend_is_one_clear_error():
    index = _index("int8", np.eye(4, dtype=np.float32), meta=False)
    with pytest.raises(ValueError, match="unknown search backend 'blas'"):
        index.search_arrays(np.eye(4)[:1], 1, backend="blas")


# ------------------------------------------------------------------ products
def _product_reference(index: GalleryIndex, queries: np.ndarray, k: int, rows=None):
    """Each product scored by its best image (ties: smaller position), products ranked likewise."""
    s, p = _reference(index, queries, len(index), rows)
    ids = np.asarray(index.product_ids)
    out = []
    for srow, prow in zip(s, p, strict=True):
        seen, hits = set(), []
        for score, pos in zip(srow, prow, strict=True):
            if ids[pos] not in seen:
                seen.add(ids[pos])
                hits.append((score, pos))
        out.append(hits[:k])
    return out


@pytest.mark.parametrize("storage", ["float32", "int8"])
@pytest.mark.parametrize("per_product", [1, 4, 60])
def test_unique_products_match_best_image_reference(storage, per_product):
    rng = np.random.default_rng(per_product)
    centres = rng.standard_normal((30, 32)).astype(np.float32)
    emb = centres[np.arange(1200) // 40] + 0.2 * rng.standard_normal((1200, 32)).astype(np.float32)
    index = _index(storage, emb, per_product=per_product)
    queries = emb[[0, 500, 1199]] + 0.05
    for k, filt in [(5, None), (10, {"category": "mug"}), (1000, None)]:
        want = _product_reference(index, queries, k, index.filter_rows(filt))
        for backend in SIMD + ["numpy"]:
            s, p = index.search_arrays(queries, k, filt, unique_products=True, backend=backend)
            want_p = np.array([[pos for _, pos in row] for row in want])
            want_s = np.array([[sc for sc, _ in row] for row in want])
            if backend == "numpy":
                _assert_ranking(p, s, want_p, want_s)
            else:
                np.testing.assert_array_equal(p, want_p)
                np.testing.assert_allclose(s, want_s, atol=1e-6)
            ids = [index.product_ids[i] for i in p[0]]
            assert len(set(ids)) == len(ids)
    hits = index.search(queries[0], 3, unique_products=True)
    assert [h.rank for h in hits] == [1, 2, 3] and len({h.product_id for h in hits}) == 3


def test_product_recall_counts_distinct_products():
    from deepproduct.sdk.search import recall_at_k

    # Product "a" has three near-identical images that fill the top 3; "b" is 4th as an image
    # but 2nd as a product.
    base = np.eye(4, dtype=np.float32)
    emb = np.stack([base[0], base[0] + 0.01 * base[1], base[0] + 0.02 * base[1], base[0] + 0.5 * base[2], base[3]])
    index = GalleryIndex.from_embeddings(emb, ["a", "a", "a", "b", "c"])
    m = recall_at_k(index, base[:1], ["b"], ks=(1, 2, 3))
    assert (m["recall@1"], m["recall@2"], m["recall@3"]) == (0.0, 0.0, 0.0)
    assert (m["product_recall@1"], m["product_recall@2"], m["product_recall@3"]) == (0.0, 1.0, 1.0)


def test_float32_rows_exactly_on_the_shadow_grid():
    # One-hot rows quantise without residual: the shadow's grid must still be applied.
    emb = np.eye(6, dtype=np.float32) * np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]], np.float32)
    index = _index("float32", np.vstack([emb, emb[::-1] + np.eye(6, dtype=np.float32)[0]]), meta=False)
    _assert_same(index, np.array([[0.3, 0.2, 0.1, 0.9, 0.0, 0.05]], np.float32), 5)


def test_packed_filter_subsets_are_cached_and_evicted_without_changing_results():
    rng = np.random.default_rng(8)
    emb = rng.standard_normal((3000, 32)).astype(np.float32)
    index = _index("int8", emb)
    q = rng.standard_normal((1, 32)).astype(np.float32)
    cats = ["mug", "hat", "bag", "shoe", "lamp", "cup", ["pen", "box"], ["box", "pen"]]
    for _ in range(2):  # the second round hits the cache (or re-packs after eviction)
        for cat in cats:
            _assert_same(index, q, 7, {"category": cat})
    subsets = [key for key in index.coarse_codes().packed if key.count("/") > 1]
    assert len(subsets) <= exact_search.SUBSET_CACHE
    index.add(q, ["new"], [{"category": "mug"}])  # an edit: a fresh shadow, no stale subset
    assert index.search(q[0], 1, {"category": "mug"})[0].product_id == "new"


def test_auto_prefers_the_in_place_kernel_for_large_galleries(monkeypatch):
    monkeypatch.delenv("DEEPPRODUCT_SEARCH_BACKEND", raising=False)
    installed = exact_search.available_backends()
    small = exact_search.resolve_backend(None, 1000)
    large = exact_search.resolve_backend(None, exact_search.PACK_MAX_ROWS + 1)
    assert small == installed[0] != "faiss"  # faiss's top-k' kernel: whole large galleries only
    preferred = [name for name in exact_search.LARGE_GALLERY_BACKENDS if name in installed]
    assert large == (preferred[0] if preferred else installed[0])
    monkeypatch.setenv("DEEPPRODUCT_SEARCH_BACKEND", "numpy")
    assert exact_search.resolve_backend(None, 10) == "numpy"


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_single_query_fast_path_equals_the_batch_path_and_the_reference(storage):
    # One unfiltered query takes GalleryIndex's cached plan (one block, or several: 70k rows are
    # more than one block of every backend); it must answer exactly as the batch path does.
    rng = np.random.default_rng(11)
    emb = rng.standard_normal((70_000, 8)).astype(np.float32)
    emb[1000:1040] = emb[7]  # exact ties across the first block boundary's neighbourhood
    emb[69_990:] = emb[7]
    index = _index(storage, emb, meta=False)
    pair = np.vstack([emb[7], -emb[7]])
    for q in (emb[7], emb[7][None, :], rng.standard_normal(8), (emb[3] * 1000).astype(np.float64),
              np.arange(1, 9)):
        for k in (1, 10, 60):
            ref_s, ref_p = _reference(index, np.atleast_2d(q), k)
            for backend in SIMD:
                s, p = index.search_arrays(q, k, backend=backend)
                assert s.shape == p.shape == (1, k) and s.dtype == np.float32 and p.dtype == np.int64
                np.testing.assert_array_equal(p, ref_p)
                np.testing.assert_allclose(s, ref_s, atol=1e-6, rtol=0)
                bs, bp = index.search_arrays(np.vstack([np.atleast_2d(q), pair]), k, backend=backend)
                np.testing.assert_array_equal(bp[:1], p)
                np.testing.assert_array_equal(bs[:1], s)
    small = _index(storage, emb[:5], meta=False)
    for backend in SIMD:
        assert small.search_arrays(emb[7], 50, backend=backend)[1].shape == (1, 5)  # k > N
        with pytest.raises(ValueError, match="NaN"):
            small.search_arrays(np.full(8, np.nan, np.float32), 3, backend=backend)
        with pytest.raises(ValueError, match="all zeros"):
            small.search_arrays(np.zeros(8), 3, backend=backend)
        with pytest.raises(Exception, match="dimension"):
            small.search_arrays(np.ones(9), 3, backend=backend)
    assert GalleryIndex(8, storage).search_arrays(np.ones(8), 3)[1].shape == (1, 0)


def test_repeated_filter_reuses_its_rows_until_an_edit():
    rng = np.random.default_rng(12)
    emb = rng.standard_normal((400, 16)).astype(np.float32)
    index = _index("int8", emb)
    q = emb[0]
    first = index.search_arrays(q, 5, {"category": "mug"})
    rows = index._filter_rows[next(iter(index._filter_rows))]
    assert not rows.flags.writeable and len(rows) == 40
    np.testing.assert_array_equal(index.search_arrays(q, 5, {"category": ["mug"]})[1], first[1])
    assert index.remove(positions=[int(first[1][0, 0])]) == 1  # an edit: the cached rows are stale
    after = index.search_arrays(q, 5, {"category": "mug"})[1][0]
    assert all(index.metadata[p]["category"] == "mug" for p in after) and len(index._filter_rows) == 1
    for cat in ["hat", "bag", "shoe", "lamp", "cup"]:
        index.search_arrays(q, 3, {"category": cat})
    assert len(index._filter_rows) <= exact_search.SUBSET_CACHE


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_one_block_single_query_path_keeps_ids_scores_and_tie_rule(storage):
    # A gallery of one scan block takes CoarsePlan.search_one's inlined path (query rounding,
    # threshold, tightening, vecdot re-scoring, stable sort): same answer as the reference and
    # the numpy path, including runs of exact ties, a near-constant gallery (every row a
    # candidate: the tightening step) and k beyond the gallery.
    rng = np.random.default_rng(21)
    emb = rng.standard_normal((3000, 16)).astype(np.float32)
    emb[[5, 900, 901, 2999]] = emb[40]  # ties scattered over the block, one at its end
    flat = np.tile(rng.standard_normal(16).astype(np.float32), (600, 1))
    flat[::7, 0] += 3e-2  # two score levels ~1e-5 apart: every row a stage-1 candidate
    for gallery in (emb, flat):
        index = _index(storage, gallery, meta=False)
        for backend in SIMD:
            plan = index._plan(backend)
            assert len(plan.blocks) == 1 or plan.top_k_index is not None  # faiss: its own top-k
            for q in (gallery[40], -gallery[40], rng.standard_normal(16), np.eye(16)[3] * 1e-3):
                for k in (1, 4, 10, 60, len(gallery) + 5):
                    ref_s, ref_p = _reference(index, np.atleast_2d(q), k)
                    s, p = index.search_arrays(q, k, backend=backend)
                    _assert_ranking(p, s, ref_p, ref_s, gap=1e-7)
                    ns, np_ = index.search_arrays(q, k, backend="numpy")  # float32 BLAS: near-ties may swap
                    _assert_ranking(p, s, np_, ns)
            s, p = index.search_arrays(gallery[40], 10, backend=backend)
            if gallery is emb:  # the tied rows rank by position
                assert p[0, :5].tolist() == [5, 40, 900, 901, 2999]
