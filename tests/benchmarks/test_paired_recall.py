"""The paired Recall@1 comparison's statistics (hand-computed) and its candidate syntax."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepproduct.benchmarks.paired_recall import (
    CandidateError,
    bootstrap_diff,
    mcnemar_exact,
    parse_candidate,
)


def test_mcnemar_counts_only_discordant_queries() -> None:
    a = np.array([1, 1, 1, 0, 0, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 1, 1, 1, 1, 0], bool)
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (1, 3)
    # binomial(4, 1/2): P(X <= 1) = 5/16, two-sided 10/16
    assert math.isclose(p, 10 / 16)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)


def test_bootstrap_interval_resamples_products_and_brackets_the_difference() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(200), 2)  # two queries per product
    a = rng.random(400) < 0.5
    b = a | (rng.random(400) < 0.2)  # b answers everything a does, and more
    lo, hi = bootstrap_diff(a, b, groups)
    diff = b.mean() - a.mean()
    assert 0 < lo < diff < hi
    same_lo, same_hi = bootstrap_diff(a, a, groups)
    assert same_lo == same_hi == 0.0


def test_candidates_parse_and_bad_ones_are_named() -> None:
    assert parse_candidate("offtheshelf@224") == ("offtheshelf@224", "offtheshelf", 224)
    assert parse_candidate("mine=runs/x/last.safetensors@160") == ("mine", "runs/x/last.safetensors", 160)
    assert parse_candidate("offtheshelf:efficientnet_lite1@240") == (
        "offtheshelf:efficientnet_lite1@240", "offtheshelf:efficientnet_lite1", 240)
    with pytest.raises(CandidateError, match="'offtheshelf': expected"):
        parse_candidate("offtheshelf")


def test_compare_on_a_real_tiny_set_records_backbone_and_pairs(tiny_manifest) -> None:
    from deepproduct.benchmarks.paired_recall import compare

    recs = compare(tiny_manifest, ["a=offtheshelf:tiny_cnn@64", "b=offtheshelf:tiny_cnn@96"], None)
    assert [r["label"] for r in recs] == ["a", "b"] and all(r["backbone"] == "tiny_cnn" for r in recs)
    assert recs[0]["recall@1"] == recs[0]["hits"].count("1") / recs[0]["queries"]
    assert recs[1]["vs"] == "a" and recs[1]["diff"] == pytest.approx(recs[1]["recall@1"] - recs[0]["recall@1"])
