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
import re
import time
from pathlib import Path
from typing import Any

from deepproduct.benchmarks.schema import read_jsonl
from deepproduct.benchmarks.schema import read_records as read_benchmark_records  # validated dp-bench records
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
    for n, rec in read_jsonl(p):
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


# --- The study from records: Recall@1 from paired_recall, latency from dp-bench models ------------------
#
# Why a second mode: the input-size choice must rest on the exported int8 runtimes' latency (what a
# phone runs), not eager PyTorch, and on trained models over several seeds and both transfer styles.
# Those come from two measured logs: `python -m deepproduct.benchmarks.paired_recall ... --out
# STYLE.jsonl` (labels ``sN-CONFIG`` for seed N of CONFIG, or ``CONFIG`` for one seed) and `dp-bench
# models EXPORT --threads 1 --only onnx/int8,tflite/int8,executorch/int8` (latency records carrying
# backbone and input_size). This joins them by (backbone, input size).

STUDY_ARTEFACTS = ("onnx/int8", "tflite/int8", "executorch/int8")
_SEEDED = re.compile(r"^s(\d+)-(.+)$")


def _split_label(label: str) -> tuple[str, int | None]:
    m = _SEEDED.match(label)
    return (m.group(2), int(m.group(1))) if m else (label, None)


def latest_latency(path: str | os.PathLike, artefacts: tuple[str, ...] = STUDY_ARTEFACTS) -> dict[tuple, dict]:
    """(backbone, input_size, artefact) -> the newest batch-1, 1-thread latency record."""
    best: dict[tuple, dict] = {}
    for rec in read_benchmark_records([path]):
        if rec.get("kind") != "latency" or rec.get("threads") != 1 or rec.get("batch") != 1:
            continue
        key = (rec.get("backbone"), rec.get("input_size"), rec.get("artefact"))
        if key[2] in artefacts and None not in key and rec.get("timestamp", "") >= best.get(key, {}).get("timestamp", ""):
            best[key] = rec
    return best


def study_points(recall: dict[str, str | os.PathLike], latency: str | os.PathLike) -> list[dict[str, Any]]:
    """One point per configuration: per style the Recall@1 mean and sd over its seeds, the gain
    over off-the-shelf features of the same backbone at the same input size (seed by seed,
    paired on the same queries), and the 1-thread int8 latency of each artefact."""
    import numpy as np

    from .paired_recall import is_offtheshelf

    lat = latest_latency(latency)
    configs: dict[str, dict[str, Any]] = {}
    for style, path in recall.items():
        records = [r for _, r in read_jsonl(path) if r.get("kind") == "paired_recall"]
        if not records:
            raise ValueError(f"{path}: no paired_recall records")
        ots = {(r.get("backbone"), r["size"]): r for r in records if is_offtheshelf(r["source"])}
        for r in records:
            name, seed = _split_label(r["label"])
            c = configs.setdefault(name, {"config": name, "backbone": r.get("backbone"), "input_size": r["size"],
                                          "offtheshelf": is_offtheshelf(r["source"]), "styles": {}})
            st = c["styles"].setdefault(style, {"recall": {}, "gain": {}, "queries": r["queries"]})
            st["recall"][seed] = r["recall@1"]
            base = ots.get((r.get("backbone"), r["size"]))
            if base is not None and not c["offtheshelf"]:
                a = np.array([ch == "1" for ch in base["hits"]])
                b = np.array([ch == "1" for ch in r["hits"]])
                if a.size != b.size:
                    raise ValueError(f"{path}: {r['label']} and {base['label']} scored different query sets")
                st["gain"][seed] = float(b.mean() - a.mean())
    points = []
    for c in configs.values():
        for st in c["styles"].values():
            vals = list(st.pop("recall").values())
            gains = list(st.pop("gain").values())
            st.update({"seeds": len(vals), "recall@1": float(np.mean(vals)),
                       "recall@1_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                       "gain_vs_offtheshelf": float(np.mean(gains)) if gains else None,
                       "gain_sd": float(np.std(gains, ddof=1)) if len(gains) > 1 else None})
        c["latency_ms"] = {a: (lat[(c["backbone"], c["input_size"], a)]["median_ms"]
                               if (c["backbone"], c["input_size"], a) in lat else None) for a in STUDY_ARTEFACTS}
        points.append(c)
    return points


def plot_study(points: list[dict[str, Any]], out_png: str | os.PathLike, default: str | None = None,
               artefact: str = "onnx/int8") -> dict[str, list[str]]:
    """One panel per style: ``artefact`` latency (x) against Recall@1 (y, mean +- sd over seeds),
    trained configurations filled, off-the-shelf hollow, the trained front dashed, ``default``
    starred. Returns each style's front (configuration names)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = list(dict.fromkeys(s for p in points for s in p["styles"]))
    timed = [p for p in points if p["latency_ms"].get(artefact) is not None]
    cols = min(2, len(styles))
    rows = -(-len(styles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.8 * rows), squeeze=False)
    for ax in axes.flat[len(styles):]:
        ax.set_visible(False)
    fronts: dict[str, list[str]] = {}
    for ax, style in zip(axes.flat, styles, strict=False):
        pts = [p for p in timed if style in p["styles"]]
        for p in pts:
            st = p["styles"][style]
            x, y = p["latency_ms"][artefact], 100 * st["recall@1"]
            err = 100 * st["recall@1_sd"] if st["recall@1_sd"] else None
            ax.errorbar(x, y, yerr=err, fmt="o", mfc="none" if p["offtheshelf"] else None, capsize=3,
                        color="0.55" if p["offtheshelf"] else "C0", ms=6)
            if p["config"] == default:
                ax.plot(x, y, "*", color="C3", ms=16, zorder=5, label=f"default: {default}")
            ax.annotate(p["config"], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        trained = [p for p in pts if not p["offtheshelf"]]
        xy = [(p["latency_ms"][artefact], p["styles"][style]["recall@1"]) for p in trained]
        front = sorted(pareto_front(xy), key=lambda i: xy[i][0])
        fronts[style] = [trained[i]["config"] for i in front]
        ax.plot([xy[i][0] for i in front], [100 * xy[i][1] for i in front], "k--", lw=1, label="Pareto front (trained)")
        q = pts[0]["styles"][style]["queries"] if pts else "?"
        ax.set(xlabel=f"{artefact} latency, ms (1 thread, batch 1, median)",
               ylabel="Recall@1 (%), mean ± sd over seeds", title=f"{style} ({q} queries); hollow: off-the-shelf")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, out_png, dpi=120)
    plt.close(fig)
    return fronts


def study_table(points: list[dict[str, Any]], default: str | None = None) -> str:
    """Markdown: one row per configuration, Recall@1 (mean ± sd, seeds) and the gain over
    off-the-shelf per style, then the three int8 latencies."""
    styles = list(dict.fromkeys(s for p in points for s in p["styles"]))

    def cell(st: dict | None) -> str:
        if st is None:
            return "-"
        sd = f" ± {100 * st['recall@1_sd']:.1f}" if st["recall@1_sd"] is not None else ""
        gain = ""
        if st["gain_vs_offtheshelf"] is not None:
            gsd = f" ± {100 * st['gain_sd']:.1f}" if st["gain_sd"] is not None else ""
            gain = f" ({100 * st['gain_vs_offtheshelf']:+.1f}{gsd})"
        return f"{100 * st['recall@1']:.1f}{sd}{gain} [{st['seeds']}]"

    head = ["configuration", "backbone @ px"] + styles + [f"{a} ms" for a in STUDY_ARTEFACTS]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in sorted(points, key=lambda p: (p["offtheshelf"], p["backbone"] or "", p["input_size"], p["config"])):
        name = f"**{p['config']}** (default)" if p["config"] == default else p["config"]
        lat = [f"{v:.2f}" if v is not None else "-" for v in (p["latency_ms"][a] for a in STUDY_ARTEFACTS)]
        rows.append("| " + " | ".join([name, f"{(p['backbone'] or '?').replace('efficientnet_', '')} @ {p['input_size']}"]
                                       + [cell(p["styles"].get(s)) for s in styles] + lat) + " |")
    return "\n".join(rows) + "\n"
