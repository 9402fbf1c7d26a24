"""paired_seeds: per-seed and pooled paired differences from paired_recall records, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepproduct.benchmarks.paired_seeds import main, pooled_comparison


def _rec(label: str, hits: str, labels: list[int] | None = None) -> dict:
    return {"kind": "paired_recall", "label": label, "recall@1": hits.count("1") / len(hits), "hits": hits,
            "query_labels": labels or [0, 0, 1, 1]}


RECORDS = [_rec("ots", "1000"), _rec("s0-old", "1100"), _rec("s0-new", "1110"),
           _rec("s1-old", "1010"), _rec("s1-new", "1011")]


def test_per_seed_and_pooled_figures_by_hand():
    cmp = pooled_comparison(RECORDS, "s*-old", "s*-new")
    assert [p.seed for p in cmp.pairs] == ["0", "1"] and cmp.queries == 4
    # each seed: 2/4 -> 3/4, one query only the new side answers: exact McNemar p = 2 * 1/2 = 1
    assert all((p.a, p.b, p.only_a, p.only_b, p.p) == (0.5, 0.75, 0, 1, 1.0) for p in cmp.pairs)
    # pooled over 8 (seed, query) pairs: +0.25, two discordant pairs both for the new side: p = 2 * 1/4
    assert (cmp.diff, cmp.only_a, cmp.only_b, cmp.p) == (0.25, 0, 2, 0.5)
    assert cmp.mean_sd("a") == (0.5, 0.0) and cmp.mean_sd("b") == (0.75, 0.0)
    lo, hi = cmp.ci95
    assert 0.0 <= lo <= 0.25 <= hi <= 0.5  # product bootstrap: every resample gains 0, 1/4 or 1/2


def test_mismatched_queries_and_bad_patterns_are_refused():
    with pytest.raises(ValueError, match="not scored on the same queries"):
        pooled_comparison([_rec("s0-a", "10"), _rec("s0-b", "1011")], "s*-a", "s*-b")
    with pytest.raises(ValueError, match="exactly one"):
        pooled_comparison(RECORDS, "s0-old", "s*-new")
    with pytest.raises(ValueError, match="no record label matches 'x\\*'"):
        pooled_comparison(RECORDS, "x*", "s*-new")
    with pytest.raises(ValueError, match="share no seed"):
        pooled_comparison(RECORDS + [_rec("t9-new", "1111")], "s*-old", "t*-new")
    with pytest.raises(ValueError, match="no per-query hits"):
        pooled_comparison([_rec("s0-a", "1010"), {**_rec("s0-b", "1010"), "hits": "12"}], "s*-a", "s*-b")


def test_cli(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    result = CliRunner().invoke(main, ["--records", str(path), "--a", "old=s*-old", "--b", "new=s*-new",
                                       "--baseline", "ots"])
    assert result.exit_code == 0, result.output
    assert "old: 50.0 +- 0.0 (gain over the baseline +25.0)" in result.output
    assert "new: 75.0 +- 0.0 (gain over the baseline +50.0)" in result.output
    assert "pooled: +25.0 points" in result.output and "only new / only old: 2 / 0, McNemar p=0.5" in result.output
    bad = CliRunner().invoke(main, ["--records", str(path), "--a", "s*-old", "--b", "s*-new", "--baseline", "nope"])
    assert bad.exit_code == 1 and "no record labelled 'nope'" in bad.output
