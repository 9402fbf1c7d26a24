"""The one Recall@K scoring (``deepproduct.sdk.metrics``) that the SDK, training and export gate share."""

from __future__ import annotations

import numpy as np

from deepproduct.sdk.metrics import hits_at_k, recall_from_ranking

RANKED = np.array([["a", "b", "c"], ["c", "b", "a"], ["b", "c", "d"], ["d", "d", "d"]], dtype=object)
QUERIES = np.array(["a", "a", "c", "a"], dtype=object)


def test_hits_at_k_per_query_by_hand():
    assert hits_at_k(RANKED, QUERIES, 1).tolist() == [True, False, False, False]
    assert hits_at_k(RANKED, QUERIES, 2).tolist() == [True, False, True, False]
    assert hits_at_k(RANKED, QUERIES, 3).tolist() == [True, True, True, False]
    assert hits_at_k(RANKED, QUERIES, 50).tolist() == [True, True, True, False]  # K beyond the ranking: all of it


def test_recall_from_ranking_is_the_mean_of_the_hits():
    assert recall_from_ranking(RANKED, QUERIES, (1, 2, 3), prefix="product_") == {
        "product_recall@1": 0.25, "product_recall@2": 0.5, "product_recall@3": 0.75}
    # integer labels (the trainer's) score the same way
    ints = np.vectorize(ord)(RANKED.astype(str))
    assert recall_from_ranking(ints, np.vectorize(ord)(QUERIES.astype(str)), (1, 3)) == {"recall@1": 0.25,
                                                                                        "recall@3": 0.75}
