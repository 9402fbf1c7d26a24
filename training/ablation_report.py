"""The recipe ablation's report: the Markdown table, the bar plot and ``results.md`` / ``results.json``.

Kept apart from the runner (``training/ablation.py``) so that the table can be rebuilt from an
earlier run's ``results.json`` without torch training code, and so that presentation changes do
not touch what is trained. Rows are plain dicts with the metric keys of the trainer's evaluation
(``recall@K``, ``map@r``) and, when the run scored a transfer set (``eval.transfer_manifest``,
docs/transfer-benchmark.md), ``transfer/recall@1`` (head) and ``transfer/pooled/recall@1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from deepproduct.sdk.fileio import save_figure
from deepproduct.training.atomic import write_text_atomic

METRICS = ("recall@1", "recall@5", "recall@10", "map@r")
TRANSFER_METRICS = ("transfer/recall@1", "transfer/pooled/recall@1")
TRANSFER_HEADERS = ("transfer R@1 (embedding)", "transfer R@1 (pooled backbone)")


def _fmt(v: Any, digits: int = 4) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def has_transfer(rows: list[dict[str, Any]]) -> bool:
    return any(k in r for r in rows for k in TRANSFER_METRICS)


def markdown_table(rows: list[dict[str, Any]], baseline: str) -> str:
    """One line per row; the transfer columns appear when any row was scored on a transfer set."""
    base = next((r for r in rows if r["name"] == baseline), None)
    transfer = has_transfer(rows)
    cols = ["recipe", "config", "Recall@1", "Recall@5", "Recall@10", "MAP@R", "R@1 vs robust contrastive"]
    cols += list(TRANSFER_HEADERS) if transfer else []
    cols += ["train time (s)", "img/s", "steps"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        delta = "-"
        if base is not None and r["name"] != baseline and "recall@1" in r:
            delta = f"{100 * (r['recall@1'] - base['recall@1']):+.1f} pts"
        train = _fmt(r.get("train_seconds"), 0) if r.get("train_seconds") else ("-" if r.get("extra") else "0")
        cells = [r["label"], f"`{r['config']}`" if r.get("config") else ""]
        cells += [_fmt(r.get(k)) for k in METRICS] + [delta]
        cells += [_fmt(r.get(k)) for k in TRANSFER_METRICS] if transfer else []
        cells += [train, _fmt(r.get("images_per_s"), 1) if r.get("images_per_s") else "",
                  str(r.get("steps", "")) if not r.get("extra") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Grouped bars per recipe: the held-out metrics, then (hatched) the transfer Recall@1s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(METRICS) + (list(TRANSFER_METRICS) if has_transfer(rows) else [])
    names = {"map@r": "MAP@R", "transfer/recall@1": "transfer R@1 (embedding)",
             "transfer/pooled/recall@1": "transfer R@1 (pooled)"}
    labels = [r["label"].strip().replace("  ↳ ", "↳ ") for r in rows]
    x = np.arange(len(rows))
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(max(9.0, 1.25 * len(rows)), 5.2))
    for j, key in enumerate(keys):
        vals = [r.get(key, np.nan) for r in rows]
        bars = ax.bar(x + (j - (len(keys) - 1) / 2) * width, vals, width,
                      label=names.get(key, key.replace("recall", "Recall")),
                      hatch="//" if key.startswith("transfer/") else None)
        if key in ("recall@1", "transfer/recall@1"):
            ax.bar_label(bars, labels=[_fmt(v, 2) for v in vals], fontsize=7, padding=1)
    ax.set_xticks(x, [_wrap(s) for s in labels], fontsize=7)
    ax.set_ylim(0, 1.12)  # headroom above 1.0 for the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("consumer-to-shop retrieval (test split; hatched: transfer set)")
    ax.set_title(title, fontsize=10)
    ax.legend(ncols=min(len(keys), 6), fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _wrap(text: str, width: int = 16) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


def budget_text(cfg: Any, threads: int) -> str:
    """The per-recipe budget in words, from the baseline recipe's effective config."""
    steps = (cfg.optim.steps_per_epoch or 0) * cfg.optim.epochs
    return (f"{steps} steps ({cfg.optim.epochs} epochs x {cfg.optim.steps_per_epoch}) of P x K = "
            f"{cfg.data.products_per_batch} x {cfg.data.images_per_product} images at {cfg.data.image_size} px, "
            f"{cfg.model.backbone} (ImageNet weights) with its first {cfg.model.freeze_stages} stages frozen, "
            f"AdamW lr {cfg.optim.lr:g} (head x{cfg.optim.head_lr_multiplier:g}), {cfg.optim.warmup_steps} "
            f"warm-up steps then cosine, {cfg.threads or threads} CPU threads")


def write_results(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any], baseline: str, title: str,
                  partial: str, recipes_total: float, total: float) -> str:
    """``results.md``, ``results.json`` and ``ablation.png`` in ``out``; returns the table."""
    write_plot(rows, out / "ablation.png", title)
    loads = [x for r in rows for x in (r.get("load_average") or []) if x is not None]
    load_note = (f" The machine's 1-minute load average ranged {min(loads):.1f}-{max(loads):.1f} during the "
                 "run (other jobs share the CPU; train times and img/s are only comparable between rows "
                 "run under similar load)." if loads else "")
    table = markdown_table(rows, baseline)
    transfer_note = []
    if has_transfer(rows):
        transfer_note = [f"Transfer set: {meta.get('transfer', '?')}; 'embedding' is the model's output, "
                         "'pooled backbone' the L2-normalised pooled features of the same network.", ""]
    md = [f"Command: `{meta['command']}`.{partial}", "", f"Seed: {meta['seed']}. Budget per recipe: {meta['budget']}.",
          "", f"Data: {meta['data']}.", "", *transfer_note, table, "",
          f"Machine: {meta['machine']}. Wall time of all recipes (training, evaluation, extra scorings): "
          f"{recipes_total / 60:.1f} min; this invocation: {total / 60:.1f} min.{load_note} Train time = the "
          "optimiser steps only (data loading overlaps them; evaluation is not included).", ""]
    write_text_atomic(out / "results.md", "\n".join(md))
    write_text_atomic(out / "results.json", json.dumps({**meta, "rows": rows}, indent=2))
    return table
