"""Two recipes over several seeds, paired per query: the per-seed differences and the pooled one.

Why: one seed of a few hundred queries cannot separate two recipes (one query is 0.2-0.3 points and
seeds move Recall@1 by 1-3 points), and "run three seeds" only helps when the seeds are combined
with the pairing kept. This reads ``paired_recall --out`` records (each query's hit, in manifest
order), pairs run ``A`` of a seed with run ``B`` of the same seed on the same queries, and reports

* Recall@1 of each side, mean +- sd over the seeds, and each seed's B - A with McNemar's exact p;
* the pooled B - A over every (seed, query) pair, with a 95 % bootstrap interval that resamples
  *products* (a product's queries, across all seeds, together: they are not independent) and
  McNemar's p over the pooled discordant pairs (descriptive: a query's seeds are not independent).

Labels are chosen with one ``*`` standing for the seed: ``--a classical='s*-classical' --b
robust='s*-robust'`` pairs ``s0-classical`` with ``s0-robust`` and so on; ``--baseline ots192``
adds each side's gain over that record.

``python -m deepproduct.benchmarks.paired_seeds --records docs/results/loss-192-phone.jsonl \\
    --a classical='s*-classical' --b robust='s*-robust' --baseline ots192``
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from deepproduct.sdk.cli_boundary import BoundaryCommand, boundary

from .paired_recall import bootstrap_diff, mcnemar_exact
from .schema import read_jsonl


@dataclass(frozen=True)
class SeedPair:
    seed: str
    a: float
    b: float
    only_a: int
    only_b: int
    p: float


@dataclass(frozen=True)
class PooledComparison:
    queries: int
    pairs: list[SeedPair]
    diff: float
    ci95: tuple[float, float]
    only_a: int
    only_b: int
    p: float

    def mean_sd(self, side: str) -> tuple[float, float]:
        values = [getattr(p, side) for p in self.pairs]
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _hits(rec: dict[str, Any], where: str) -> np.ndarray:
    hits = rec.get("hits")
    if not isinstance(hits, str) or not hits or set(hits) - {"0", "1"}:
        raise ValueError(f"{where}: record {rec.get('label')!r} has no per-query hits (a paired_recall --out record)")
    return np.frombuffer(hits.encode("ascii"), dtype=np.uint8) == ord("1")


def _by_seed(records: dict[str, dict[str, Any]], pattern: str, where: str) -> dict[str, dict[str, Any]]:
    if pattern.count("*") != 1:
        raise ValueError(f"label pattern {pattern!r}: needs exactly one '*' (the seed)")
    head, tail = pattern.split("*")
    found = {label[len(head):len(label) - len(tail)]: rec for label, rec in records.items()
             if fnmatch.fnmatchcase(label, pattern)}
    if not found:
        raise ValueError(f"{where}: no record label matches {pattern!r} (labels: {', '.join(sorted(records))})")
    return found


def pooled_comparison(records: list[dict[str, Any]], pattern_a: str, pattern_b: str,
                      where: str = "records") -> PooledComparison:
    """B - A per seed and pooled over seeds (see the module docstring)."""
    by_label = {r["label"]: r for r in records if r.get("kind") == "paired_recall" and isinstance(r.get("label"), str)}
    side_a, side_b = _by_seed(by_label, pattern_a, where), _by_seed(by_label, pattern_b, where)
    seeds = sorted(set(side_a) & set(side_b))
    if not seeds:
        raise ValueError(f"{where}: {pattern_a!r} and {pattern_b!r} share no seed")
    pairs, all_a, all_b, groups = [], [], [], []
    for seed in seeds:
        ra, rb = side_a[seed], side_b[seed]
        a, b = _hits(ra, where), _hits(rb, where)
        labels = ra.get("query_labels")
        if a.size != b.size or labels != rb.get("query_labels") or not isinstance(labels, list) or len(labels) != a.size:
            raise ValueError(f"{where}: {ra['label']!r} and {rb['label']!r} were not scored on the same queries")
        only_a, only_b, p = mcnemar_exact(a, b)
        pairs.append(SeedPair(seed, float(a.mean()), float(b.mean()), only_a, only_b, p))
        all_a.append(a), all_b.append(b), groups.append(np.asarray(labels))
    a, b, g = np.concatenate(all_a), np.concatenate(all_b), np.concatenate(groups)
    only_a, only_b, p = mcnemar_exact(a, b)
    lo, hi = bootstrap_diff(a, b, g)
    return PooledComparison(queries=int(all_a[0].size), pairs=pairs, diff=float(b.mean() - a.mean()),
                            ci95=(lo, hi), only_a=only_a, only_b=only_b, p=p)


def describe(cmp: PooledComparison, name_a: str, name_b: str, baseline: float | None = None) -> str:
    """Plain lines, points of Recall@1."""
    def side(name: str, key: str) -> str:
        mean, sd = cmp.mean_sd(key)
        gain = "" if baseline is None else f" (gain over the baseline {100 * (mean - baseline):+.1f})"
        return f"{name}: {100 * mean:.1f} +- {100 * sd:.1f}{gain}"

    per_seed = ", ".join(f"seed {p.seed} {100 * (p.b - p.a):+.1f} (p={p.p:.2g})" for p in cmp.pairs)
    return "\n".join([
        f"{len(cmp.pairs)} seeds x {cmp.queries} queries; Recall@1, mean +- sd over seeds",
        side(name_a, "a"), side(name_b, "b"),
        f"{name_b} - {name_a} per seed: {per_seed}",
        f"pooled: {100 * cmp.diff:+.1f} points (95 % product bootstrap {100 * cmp.ci95[0]:+.1f}, "
        f"{100 * cmp.ci95[1]:+.1f}); only {name_b} / only {name_a}: {cmp.only_b} / {cmp.only_a}, McNemar p={cmp.p:.2g}",
    ])


def _named(text: str) -> tuple[str, str]:
    name, sep, pattern = text.partition("=")
    return (name, pattern) if sep else (text, text)


@click.command(cls=boundary("paired_seeds", cls=BoundaryCommand), context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--records", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="paired_recall --out records (JSON lines with per-query hits).")
@click.option("--a", "side_a", required=True, help="NAME=PATTERN, one '*' for the seed (e.g. classical='s*-classical').")
@click.option("--b", "side_b", required=True, help="NAME=PATTERN of the other side; reported as B - A.")
@click.option("--baseline", default=None, help="Label of a record whose Recall@1 each side's gain is measured from.")
def main(records: Path, side_a: str, side_b: str, baseline: str | None) -> None:
    """Recall@1 of two recipes over seeds, paired per query: per-seed and pooled B - A."""
    recs = [r for _, r in read_jsonl(records)]
    (name_a, pat_a), (name_b, pat_b) = _named(side_a), _named(side_b)
    cmp = pooled_comparison(recs, pat_a, pat_b, where=str(records))
    base = None
    if baseline is not None:
        match = [r for r in recs if r.get("label") == baseline and isinstance(r.get("recall@1"), float | int)]
        if not match:
            raise ValueError(f"{records}: no record labelled {baseline!r} with a recall@1")
        base = float(match[0]["recall@1"])
    click.echo(describe(cmp, name_a, name_b, base))


if __name__ == "__main__":
    main()
