"""Retrieval metrics against brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepproduct.training.eval.metrics import leave_one_out, map_at_r, recall_at_k, retrieval_metrics

KS = (1, 5, 10, 20)


def brute_recall(q, ql, g, gl, ks, exclude_self=False):
    """Python loops: sort the gallery by distance for every query, find the first correct rank."""
    hits = dict.fromkeys(ks, 0)
    matched = 0
    for i in range(len(q)):
        cands = [j for j in range(len(g)) if not (exclude_self and j == i)]
        if not any(gl[j] == ql[i] for j in cands):
            continue
        matched += 1
        ranked = sorted(cands, key=lambda j: sum((q[i][t] - g[j][t]) ** 2 for t in range(len(q[i]))))
        first = next(r for r, j in enumerate(ranked) if gl[j] == ql[i])
        for k in ks:
            hits[k] += first < k
    return {f"recall@{k}": hits[k] / matched for k in ks}


def brute_map_at_r(q, ql, g, gl, exclude_self=False):
    """MAP@R (Musgrave et al. 2020): mean over queries of (1/R) sum_{i<=R} P@i * rel_i."""
    scores = []
    for i in range(len(q)):
        cands = [j for j in range(len(g)) if not (exclude_self and j == i)]
        r = sum(gl[j] == ql[i] for j in cands)
        if r == 0:
            continue
        ranked = sorted(cands, key=lambda j: float(((q[i] - g[j]) ** 2).sum()))[:r]
        correct, total = 0, 0.0
        for rank, j in enumerate(ranked, 1):
            if gl[j] == ql[i]:
                correct += 1
                total += correct / rank
        scores.append(total / r)
    return float(np.mean(scores))


def random_data(seed: int, nq: int = 60, ng: int = 90, n_products: int = 30, dim: int = 8):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(nq, dim)).astype(np.float32)
    g = rng.normal(size=(ng, dim)).astype(np.float32)
    ql = rng.integers(0, n_products, nq)
    gl = np.concatenate([np.arange(n_products), rng.integers(0, n_products + 5, ng - n_products)])
    return q, ql, g, gl


@pytest.mark.parametrize("seed", [0, 1])
def test_recall_matches_brute_force(seed: int) -> None:
    q, ql, g, gl = random_data(seed)
    got = recall_at_k(q, ql, g, gl, KS, chunk=7)  # small chunks exercise the chunking
    ref = brute_recall(q.tolist(), ql.tolist(), g.tolist(), gl.tolist(), KS)
    for k in KS:
        assert got[f"recall@{k}"] == pytest.approx(ref[f"recall@{k}"], abs=1e-12)
    assert got["unmatched_queries"] == 0
    # torch tensors in, same answer
    t = recall_at_k(torch.from_numpy(q), torch.from_numpy(ql), torch.from_numpy(g), torch.from_numpy(gl), KS)
    assert t["recall@5"] == got["recall@5"]


def test_map_at_r_and_precision_at_1() -> None:
    q, ql, g, gl = random_data(2)
    got = retrieval_metrics(q, ql, g, gl, KS)
    assert got["map@r"] == pytest.approx(brute_map_at_r(q, ql, g, gl), abs=1e-5)
    assert got["precision@1"] == pytest.approx(got["recall@1"], abs=1e-9)  # PML P@1 == our Recall@1


def test_perfect_ranking_gives_one() -> None:
    # each product a distinct one-hot direction; queries and gallery on it
    labels_g = np.repeat(np.arange(5), 3)
    labels_q = np.repeat(np.arange(5), 2)
    eye = np.eye(5, dtype=np.float32)
    g = eye[labels_g] + 0.01 * np.arange(15, dtype=np.float32)[:, None] / 15
    q = eye[labels_q]
    m = retrieval_metrics(q, labels_q, g, labels_g, KS)
    assert m["map@r"] == pytest.approx(1.0)
    assert all(m[f"recall@{k}"] == 1.0 for k in KS)
    # and a totally wrong ranking scores 0 at K = 1
    bad = map_at_r(q, (labels_q + 1) % 5, g, labels_g)
    assert bad["map@r"] == pytest.approx(0.0) and bad["precision@1"] == 0.0


def test_unmatched_queries_are_left_out_and_counted() -> None:
    g = np.eye(3, dtype=np.float32)
    gl = np.array([0, 1, 2])
    q = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    ql = np.array([0, 1, 2, 7])  # product 7 has no gallery image
    m = recall_at_k(q, ql, g, gl, (1,))
    assert m["recall@1"] == 1.0 and m["unmatched_queries"] == 1.0


def test_leave_one_out_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(50, 6)).astype(np.float32)
    labels = np.repeat(np.arange(17), 3)[:50]  # product 16 has 2 images (48, 49)
    labels[-1] = 99  # now products 16 and 99 are singletons: neither can be answered
    got = leave_one_out(emb, labels, KS, chunk=8)
    ref = brute_recall(emb.tolist(), labels.tolist(), emb.tolist(), labels.tolist(), KS, exclude_self=True)
    for k in KS:
        assert got[f"recall@{k}"] == pytest.approx(ref[f"recall@{k}"], abs=1e-12)
    assert got["unmatched_queries"] == 2.0
    assert got["map@r"] == pytest.approx(brute_map_at_r(emb, labels, emb, labels, exclude_self=True), abs=1e-5)
    assert got["precision@1"] == pytest.approx(got["recall@1"], abs=1e-9)


def test_large_gallery_is_chunked() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(size=(10_000, 16)).astype(np.float32)
    gl = np.arange(10_000)
    q = g[:2_000] + 0.01 * rng.normal(size=(2_000, 16)).astype(np.float32)
    m = recall_at_k(q, gl[:2_000], g, gl, KS)
    assert m["recall@1"] == 1.0
    assert all(isinstance(v, float) and not math.isnan(v) for v in m.values())


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="labels"):
        recall_at_k(np.zeros((3, 2)), [0, 1], np.zeros((2, 2)), [0, 1])
