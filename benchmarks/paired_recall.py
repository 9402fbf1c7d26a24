"""Paired Recall@1: two models (or one model at two input sizes) scored on the *same* queries.

Why: a Recall@1 difference of a few points on a few hundred queries is within the binomial noise
of each figure, but most queries are answered the same way by both candidates; what decides is
the discordant queries. This tool embeds a consumer-to-shop test set through the one training-side
embedding path (``training.eval.held_out.embed_dataset``, the exported graph's ``forward``; ``offtheshelf``
uses the unit pooled backbone features, as ``dp-train --eval-only --off-the-shelf``) and reports,
for every candidate against the first:

* Recall@1 of each (identical to ``dp-train --eval-only`` on the same manifest and size);
* the discordant counts (queries only A gets right, only B gets right) and McNemar's exact
  two-sided p-value over them;
* a 95 % bootstrap interval of the difference, resampling *products* (a product's two phone photos
  are not independent), 2000 resamples;
* in ``--out``, each query's hit (``hits``, a 0/1 string) and product label, to pool seeds afterwards.

``python -m deepproduct.benchmarks.paired_recall --manifest runs/demo/transfer/manifest.csv \\
    --candidate offtheshelf@160 --candidate offtheshelf@224 [--candidate CKPT@224] --out results.jsonl``
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click
import numpy as np

from deepproduct.sdk.cli_boundary import BoundaryCommand, boundary
from deepproduct.sdk.fileio import write_text_atomic
from deepproduct.sdk.output_policy import check_file_output

BOOTSTRAP_RESAMPLES = 2000


OFFTHESHELF = "offtheshelf"


def is_offtheshelf(source: str) -> bool:
    """``offtheshelf`` or ``offtheshelf:BACKBONE``: pooled pretrained features, not a checkpoint."""
    return source.partition(":")[0] == OFFTHESHELF


class CandidateError(ValueError):
    """A ``--candidate`` that is not ``SOURCE@SIZE``; the message names it."""


def parse_candidate(text: str) -> tuple[str, str, int]:
    """``[LABEL=]SOURCE@SIZE`` -> (label, source, size); SOURCE is ``offtheshelf`` (the config's
    backbone), ``offtheshelf:BACKBONE`` (e.g. ``offtheshelf:efficientnet_lite1``) or a checkpoint."""
    label, _, spec = text.rpartition("=") if "=" in text else ("", "", text)
    source, sep, size = spec.rpartition("@")
    if not sep or not source or not size.isdigit() or int(size) < 32:
        raise CandidateError(f"--candidate {text!r}: expected [LABEL=]SOURCE@SIZE, SOURCE offtheshelf or a "
                             f"checkpoint, SIZE in px (e.g. offtheshelf@224)")
    name = source if is_offtheshelf(source) else Path(source).name
    return label or f"{name}@{size}", source, int(size)


def query_hits(manifest_path: str | Path, source: str, size: int, config: str | None,
               batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, dict, str | None]:
    """Per-query top-1 correctness (consumer-to-shop, test split), each query's product id, and the
    run's Recall@1/5/10 from ``training.eval.metrics.recall_at_k`` (a check that this is the usual figure),
    and the model's backbone name."""
    import torch

    from deepproduct.sdk.dataset_manifest import read_dataset_manifest
    from deepproduct.training.checkpoint import load_model
    from deepproduct.training.config import load_config
    from deepproduct.training.data.product_dataset import EvalImages, items_for_split
    from deepproduct.training.eval.held_out import embed_items
    from deepproduct.training.eval.metrics import recall_at_k
    from deepproduct.training.trainer import build_model

    manifest = read_dataset_manifest(manifest_path)
    offtheshelf = is_offtheshelf(source)
    if offtheshelf:
        backbone = source.partition(":")[2]
        model = build_model(load_config(config, [f"model.backbone={backbone}"] if backbone else []))
    else:
        model, _ = load_model(source)
    model.input_size = size
    device = torch.device("cpu")
    model = model.to(device)
    items, _ = items_for_split(manifest, "test")
    emb = embed_items(model, EvalImages(items, size), device, batch_size, off_the_shelf=offtheshelf,
                      progress=False)
    labels = np.array([it.label for it in items])
    domains = np.array([it.domain for it in items])
    q, g = domains == 1, domains == 0
    if not q.any() or not g.any():
        raise CandidateError(f"{manifest_path}: no consumer-to-shop test split (needs shop and user rows)")
    sims = emb[q] @ emb[g].T
    top = labels[g][np.argmax(sims, axis=1)]
    hits = top == labels[q]
    metrics = recall_at_k(emb[q], labels[q], emb[g], labels[g], (1, 5, 10))
    return hits, labels[q], metrics, getattr(model, "backbone_name", None)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Queries only ``a`` answers, only ``b`` answers, and the exact two-sided McNemar p-value
    (binomial(n01 + n10, 1/2))."""
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return only_a, only_b, 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return only_a, only_b, min(1.0, 2 * tail)


def bootstrap_diff(a: np.ndarray, b: np.ndarray, groups: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                   seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of mean(b) - mean(a), resampling groups (products) with replacement."""
    uniq, inverse = np.unique(groups, return_inverse=True)
    diff = b.astype(np.float64) - a.astype(np.float64)
    per_group = np.bincount(inverse, weights=diff, minlength=len(uniq))
    counts = np.bincount(inverse, minlength=len(uniq)).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(resamples, len(uniq)))
    stats = per_group[draws].sum(axis=1) / counts[draws].sum(axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def compare(manifest: str | Path, candidates: list[str], config: str | None) -> list[dict]:
    """One record per candidate: its Recall@K and, from the second on, the paired comparison with the first."""
    parsed = [parse_candidate(c) for c in candidates]
    records, base = [], None
    for label, source, size in parsed:
        start = time.perf_counter()
        hits, groups, metrics, backbone = query_hits(manifest, source, size, config)
        rec = {"kind": "paired_recall", "manifest": str(manifest), "label": label, "source": source, "size": size,
               "queries": int(hits.size), "products": int(len(np.unique(groups))),
               "backbone": backbone,
               "recall@1": float(hits.mean()), **{k: float(v) for k, v in metrics.items()},
               "seconds": round(time.perf_counter() - start, 1),
               # Per query, in manifest order: for pooling seeds or sets later (same queries, same order).
               "hits": "".join("1" if h else "0" for h in hits), "query_labels": [int(g) for g in groups]}
        if base is None:
            base = (label, hits, groups)
        else:
            only_base, only_this, p = mcnemar_exact(base[1], hits)
            lo, hi = bootstrap_diff(base[1], hits, groups)
            rec.update({"vs": base[0], "diff": float(hits.mean() - base[1].mean()), "ci95": [lo, hi],
                        "only_vs": only_base, "only_this": only_this, "mcnemar_p": p})
        records.append(rec)
    return records


def format_row(rec: dict) -> str:
    """One line per candidate (the paired figures when it has a baseline)."""
    line = f"{rec['label']:<28} R@1 {rec['recall@1']:.4f} ({rec['queries']} queries, {rec['products']} products)"
    if "vs" in rec:
        line += (f"  vs {rec['vs']}: {rec['diff']:+.4f} [95% CI {rec['ci95'][0]:+.4f}, {rec['ci95'][1]:+.4f}], "
                 f"discordant {rec['only_this']} vs {rec['only_vs']}, McNemar p={rec['mcnemar_p']:.3g}")
    return line


@click.command(cls=boundary("paired_recall", cls=BoundaryCommand), context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--manifest", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Consumer-to-shop manifest (its test split is scored).")
@click.option("--candidate", "candidates", multiple=True, required=True,
              help="[LABEL=]SOURCE@SIZE, SOURCE = offtheshelf[:BACKBONE] or a checkpoint; the first is the baseline.")
@click.option("--config", default="configs/demo.yaml", show_default=True,
              help="Config the off-the-shelf backbone is built from.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON-lines records to write (one per candidate).")
def main(manifest: Path, candidates: tuple[str, ...], config: str, threads: int, out: Path | None) -> None:
    """Recall@1 of each candidate on the same queries, paired with the first (McNemar, bootstrap)."""
    import torch

    for c in candidates:
        parse_candidate(c)  # usage errors before any model is loaded
    if out is not None:
        check_file_output(out, [manifest, config], what="records (--out)", kind="jsonl-records")
    torch.set_num_threads(threads)
    records = compare(manifest, list(candidates), config)
    for rec in records:
        click.echo(format_row(rec))
    if out is not None:
        write_text_atomic(out, "".join(json.dumps(r) + "\n" for r in records))


if __name__ == "__main__":
    main()
