"""Model size / input resolution trade-off: host latency against transfer-set Recall@1.

``dp-bench pareto --transfer runs/transfer/manifest.csv --backbones efficientnet_lite0,efficientnet_lite1,efficientnet_lite2
--sizes 160,192,224`` scores every (backbone, input size) pair on the real-image transfer set
(docs/transfer-benchmark.md) and times it, appends one JSON line per pair, and plots latency
against Recall@1 with the Pareto front marked (the pairs no other pair beats on both).

Why this shape: choosing a default backbone and input size is a two-objective decision; a plot
of every candidate with its front makes the dominated ones obvious. Recall comes from the
transfer set because that is what an app ships against; without ``--checkpoint`` the features
are the off-the-shelf pooled ImageNet features (the reference every fine-tuned model must beat),
with ``--checkpoint`` the trained embedding of that checkpoint at each size.

Latency: PyTorch eager fp32, batch 1, ``--threads`` threads, with dp-bench's timing protocol
(``benchmarks.timing.time_calls``: warm-up, median of single timed calls). Eager latency ranks
backbones and sizes the same way as the exported runtimes do only roughly; for deployment figures
export the chosen pair and run ``dp-bench models``. On a shared machine compare ratios from one
run, not absolute numbers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from deepproduct.benchmarks.timing import time_calls
from deepproduct.sdk.fileio import save_figure

RECALL_KEY = "transfer/pooled/recall@1"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower-or-equal latency and higher-or-equal
    recall, strictly better in one (``points`` are (latency, recall))."""
    front = []
    for i, (lat, rec) in enumerate(points):
        dominated = any((l2 <= lat and r2 >= rec) and (l2 < lat or r2 > rec)
                        for j, (l2, r2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def measure(transfer: str | os.PathLike, backbones: list[str], sizes: list[int], checkpoint: str | None = None,
            threads: int = 1, runs: int = 20, warmup: int = 3, max_products: int | None = None,
            say: Any = print) -> list[dict[str, Any]]:
    """One record per (backbone, size): transfer Recall@1/5/10, latency, parameter count."""
    import torch

    from deepproduct.sdk.dataset_manifest import read_dataset_manifest
    from deepproduct.training.eval.transfer import TransferEval
    from deepproduct.training.models import build_embedding_net

    torch.set_num_threads(threads)
    manifest = read_dataset_manifest(transfer)
    trained = None
    if checkpoint:
        from deepproduct.training.checkpoint import load_model

        trained, _ = load_model(checkpoint)
        backbones = ["checkpoint"]
    records = []
    for size in sizes:  # outer loop: the transfer set is preprocessed once per size
        te = TransferEval(transfer, size, manifest, max_products=max_products)
        for name in backbones:
            model = trained if trained is not None else build_embedding_net(name, pretrained=True)
            model.eval()
            t0 = time.perf_counter()
            scores = te(model, torch.device("cpu"))
            eval_s = time.perf_counter() - t0
            x = torch.rand(1, 3, size, size)
            with torch.no_grad():
                stats = time_calls(lambda m=model, x=x: m(x), runs=runs, warmup=warmup)
            features = "trained embedding" if trained is not None else "off-the-shelf pooled"
            recall = {k.replace("transfer/pooled/", "").replace("transfer/", ""): v for k, v in scores.items()
                      if (k.startswith("transfer/pooled/") if trained is None else "/pooled/" not in k)
                      and "recall@" in k}
            rec = {"type": "pareto", "backbone": getattr(model, "backbone_name", name) if trained is not None
                   else name, "input_size": size, "features": features, **recall,
                   "queries": scores["transfer/queries"], "gallery": scores["transfer/gallery"],
                   "latency_ms": stats.median_ms, "latency_p90_ms": stats.p90_ms, "latency_runs": stats.runs,
                   "runtime": "pytorch-eager fp32 batch 1", "threads": threads,
                   "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                   "eval_seconds": round(eval_s, 1), "transfer": str(transfer),
                   "checkpoint": checkpoint, "load_average": _load()}
            say(f"{rec['backbone']} @ {size}px: transfer R@1 {rec['recall@1']:.3f} ({rec['queries']} queries), "
                f"{stats.median_ms:.1f} ms median")
            records.append(rec)
    return records


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def append_records(path: str | os.PathLike, records: list[dict[str, Any]]) -> Path:
    """Append the records as JSON lines (a log that grows run by run, like dp-bench's host.jsonl)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    return p


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such pareto records file")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{n}: not JSON ({exc.msg})") from exc
            if rec.get("type") == "pareto":
                missing = {"backbone", "input_size", "recall@1", "latency_ms"} - set(rec)
                if missing:
                    raise ValueError(f"{p}:{n}: pareto record lacks {', '.join(sorted(missing))}")
                out.append(rec)
    if not out:
        raise ValueError(f"{p}: no pareto records")
    return out


def plot(records: list[dict[str, Any]], out_png: str | os.PathLike) -> list[int]:
    """Latency (x) against transfer Recall@1 (y), one marker per backbone, the front joined up;
    returns the front's indices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(float(r["latency_ms"]), float(r["recall@1"])) for r in records]
    front = sorted(pareto_front(pts), key=lambda i: pts[i][0])
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for b in sorted({r["backbone"] for r in records}):
        idx = [i for i, r in enumerate(records) if r["backbone"] == b]
        ax.scatter([pts[i][0] for i in idx], [100 * pts[i][1] for i in idx], label=b, s=40)
        for i in idx:
            ax.annotate(f"{records[i]['input_size']}px", pts[i][0:1] + (100 * pts[i][1],), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    ax.plot([pts[i][0] for i in front], [100 * pts[i][1] for i in front], "k--", lw=1, label="Pareto front")
    r0 = records[0]
    ax.set(xlabel=f"host latency, ms ({r0.get('runtime', '?')}, {r0.get('threads', '?')} thread(s), median)",
           ylabel=f"transfer-set Recall@1 (%), {r0.get('features', '')}",
           title=f"Size / resolution trade-off ({r0.get('queries', '?')} real-image queries)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_png, dpi=120)
    plt.close(fig)
    return front
