"""``dp-bench report``: host and device JSON lines -> one markdown report with tables and plots.

Records are merged across files; where the same configuration was measured more than once
(same machine, artefact, runtime, threads, batch ...) the latest record wins, so re-running one
part of the benchmark refreshes just that part. Plots are written beside the report with
matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepproduct.sdk.fileio import save_figure, write_text_atomic
from deepproduct.sdk.locking import ordinary_file_mode
from deepproduct.sdk.output_policy import MARKDOWN_MARKER

from .schema import read_records

INT8_SPEEDUP_TARGET = 1.5
SEARCH_RATIO_TARGET = 1.5


def machine_name(m: dict[str, Any]) -> str:
    if m.get("kind") in ("android", "ios"):
        return f"{m.get('device_model', '?')} ({m.get('soc') or m.get('os', '')})".replace(" ()", "")
    return f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores ({m.get('hostname', '?')})"


def _config_key(r: dict[str, Any]) -> tuple:
    fields = ("kind", "source", "artefact", "runtime", "threads", "batch", "impl", "storage", "gallery_size",
              "dim", "k", "op_type", "what")
    return (machine_name(r["machine"]),) + tuple(str(r.get(f)) for f in fields)


def latest(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per configuration: the one with the latest timestamp (ties: the later one read)."""
    best: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = _config_key(r)
        if key not in best or r["timestamp"] >= best[key]["timestamp"]:
            best[key] = r
    return list(best.values())


def _ms(v: float | None) -> str:
    if v is None:
        return "--"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "--" if v is None else f"{100 * v:.1f}"


def _search_label(key: str) -> str:
    """``sdk-GalleryIndex:int8`` -> ``SDK int8``; prototypes keep their name."""
    impl, _, storage = key.partition(":")
    return f"SDK {storage}" if impl == "sdk-GalleryIndex" else f"{impl} {storage}"


def _search_order(key: str) -> tuple:
    return (not key.startswith("sdk-"), key)


def _ratio(ours: float, theirs: float | None) -> str:
    if not theirs:
        return "--"
    ratio = ours / theirs
    return f"{ratio:.2f}x " + ("✓" if ratio <= SEARCH_RATIO_TARGET else "✗")


def _mb(v: int | None) -> str:
    return "--" if v is None else f"{v / 1e6:.2f}"


def _cell(text: str) -> str:
    """A table cell from record fields (a hostname, a phone's model name): a ``|`` or a line break
    in it would split the row into extra columns."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(head: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(head) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(map(_cell, head)) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _latency_value(r: dict[str, Any]) -> float:
    """Median where the tool gives one; device tools without medians fall back to the mean."""
    return r["median_ms"] if r.get("median_ms") is not None else r["mean_ms"]


def _artefact_order(key: str) -> tuple:
    fmt, _, prec = key.partition("/")
    return ({"pytorch": 0, "onnx": 1, "tflite": 2, "coreml": 3}.get(fmt, 9), {"fp32": 0, "fp16": 1}.get(prec, 2), key)


class Report:
    """Builds the markdown sections from a list of records (already reduced with :func:`latest`)."""

    def __init__(self, records: list[dict[str, Any]], plots_dir: Path) -> None:
        self.records = records
        self.plots_dir = plots_dir
        self.by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            self.by_kind[r["kind"]].append(r)
        self.plots: list[Path] = []

    # --------------------------------------------------------------- helpers
    def _host(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.by_kind[kind] if r["source"] == "host"]

    def _host_latency(self, artefact: str, threads: int, batch: int = 1) -> dict[str, Any] | None:
        return next((r for r in self._host("latency") if r["artefact"] == artefact and r["threads"] == threads
                     and r["batch"] == batch), None)

    # --------------------------------------------------------------- sections
    def machines(self) -> str:
        seen: dict[str, dict[str, Any]] = {}
        for r in self.records:
            seen.setdefault(machine_name(r["machine"]), r["machine"] | {"_source": r["source"]})
        rows = []
        for name, m in seen.items():
            loads = sorted({r["machine"].get("load_avg_1m") for r in self.records
                            if machine_name(r["machine"]) == name and r["machine"].get("load_avg_1m") is not None})
            libs = ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items())
            extra = m.get("os", "")
            if m.get("cpu_flags"):
                extra += "; " + " ".join(m["cpu_flags"])
            load = f"{loads[0]:.2f}-{loads[-1]:.2f}" if loads else "--"
            rows.append([m["_source"], name, extra, load, libs or m.get("tool", "")])
        return "## Machines\n\n" + _table(["source", "machine", "os / SIMD", "load (1 min) during run",
                                           "libraries / tool"], rows, "lllll")

    def summary(self) -> str:
        sizes = {r["artefact"]: r for r in self._host("model_size")}
        acc = {r["artefact"]: r for r in self._host("accuracy")}
        keys = sorted({r["artefact"] for r in self._host("latency")} | set(sizes) | set(acc), key=_artefact_order)
        if not keys:
            return ""
        threads = sorted({r["threads"] for r in self._host("latency") if r["batch"] == 1})
        head = ["artefact"] + [f"median ms @{t} thr" for t in threads] + [
            "img/s @b32", "size MB", "params", "MMACs", "Recall@1 %", "cosine to ref", "flag"]
        rows = []
        for key in keys:
            row = [key]
            for t in threads:
                lat = self._host_latency(key, t)
                row.append(_ms(lat["median_ms"]) if lat else "--")
            b32 = [r for r in self._host("latency") if r["artefact"] == key and r["batch"] > 1]
            row.append(f"{max(r['images_per_s'] for r in b32):.1f}" if b32 else "--")
            s = sizes.get(key)
            row += [_mb(s["size_bytes"]) if s else "--",
                    f"{s['params']:,}" if s and s.get("params") is not None else "--",
                    f"{s['macs'] / 1e6:.1f}" if s and s.get("macs") is not None else "--"]
            a = acc.get(key)
            row += [_pct(a["recall@1"]) if a else "--",
                    f"{a['cosine_to_reference']:.5f}" if a and a.get("cosine_to_reference") is not None else "--",
                    ("⚠ -" + f"{a['recall1_drop_points']:.1f} pt R@1" if a and a.get("flagged") else "") if a else ""]
            rows.append(row)
        ref = next((a["reference"] for a in acc.values() if a.get("reference")), "")
        sizes_px = sorted({r["input_size"] for r in self._host("latency") if r.get("input_size")})
        px = f" at {'/'.join(map(str, sizes_px))} px input" if sizes_px else ""
        note = (f"\nLatency: batch 1{px}, median of individually timed calls. img/s: batch 32, best thread count. "
                f"Cosine: mean over the held-out split against `{ref or 'the reference'}` on identical inputs. "
                "⚠ marks artefacts more than 1 Recall@1 point below fp32.\n")
        return "## Summary (host)\n\n" + _table(head, rows) + note

    def int8_speedup(self) -> str:
        rows = []
        for fmt in ("onnx", "tflite"):
            for t in sorted({r["threads"] for r in self._host("latency")}):
                fp32, int8 = self._host_latency(f"{fmt}/fp32", t), self._host_latency(f"{fmt}/int8", t)
                if not fp32 or not int8:
                    continue
                speedup = fp32["median_ms"] / int8["median_ms"]
                verdict = "yes" if speedup >= INT8_SPEEDUP_TARGET else "no (see profile)"
                rows.append([fmt, str(t), _ms(fp32["median_ms"]), _ms(int8["median_ms"]), f"{speedup:.2f}x",
                             verdict])
        if not rows:
            return ""
        return ("## int8 vs fp32 (host, batch 1)\n\n"
                + _table(["format", "threads", "fp32 ms", "int8 ms", "speed-up", f">= {INT8_SPEEDUP_TARGET}x"],
                         rows) + "\n")

    def latency_details(self) -> str:
        recs = sorted(self._host("latency"), key=lambda r: (_artefact_order(r["artefact"]), r["batch"], r["threads"]))
        if not recs:
            return ""
        rows = [[r["artefact"], r["runtime"], str(r["threads"]), str(r["batch"]), _ms(r["median_ms"]),
                 _ms(r["p90_ms"]), _ms(r["min_ms"]), f"{r['images_per_s']:.1f}", str(r["runs"])] for r in recs]
        return "## Host latency (all configurations)\n\n" + _table(
            ["artefact", "runtime", "threads", "batch", "median ms", "p90 ms", "min ms", "img/s", "runs"], rows,
            "llrrrrrrr")

    def accuracy(self) -> str:
        recs = sorted(self._host("accuracy"), key=lambda r: _artefact_order(r["artefact"]))
        if not recs:
            return ""
        rows = [[r["artefact"], _pct(r["recall@1"]), _pct(r["recall@5"]), _pct(r["map@r"]),
                 "--" if r.get("cosine_to_reference") is None else f"{r['cosine_to_reference']:.5f}",
                 "--" if r.get("min_cosine_to_reference") is None else f"{r['min_cosine_to_reference']:.4f}",
                 f"{-r.get('recall1_drop_points', 0.0) + 0.0:+.1f}", "⚠" if r.get("flagged") else ""] for r in recs]
        first = recs[0]
        return (f"## Accuracy retention ({first.get('protocol', '')}, split `{first.get('split', 'test')}`, "
                f"{first['queries']} queries / {first['gallery']} gallery images)\n\n"
                + _table(["artefact", "Recall@1 %", "Recall@5 %", "MAP@R %", "mean cosine", "min cosine",
                          "ΔR@1 pt vs fp32", "flag"], rows)
                + f"\nReference for cosines: `{first.get('reference', '')}`.\n")

    def search(self) -> str:
        recs = self._host("search")
        if not recs:
            return ""
        bw = self._host("bandwidth")
        groups: dict[tuple, dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in recs:
            groups[(r["gallery_size"], r["batch"], r["threads"], r["dim"])][f"{r['impl']}:{r['storage']}"] = r
        rows = []
        for (n, batch, threads, _dim), g in sorted(groups.items()):
            faiss = g.get("faiss-IndexFlatIP:float32")
            faiss_runs = [v["median_ms"] for key, v in g.items() if key.startswith("faiss")]
            best = min(faiss_runs) if faiss_runs else None
            for key in sorted((key for key in g if not key.startswith("faiss")), key=_search_order):
                ours = g[key]
                bound = ours.get("bandwidth_bound_ms")
                rows.append([f"{n:,}", str(batch), str(threads), _search_label(key), _ms(ours["median_ms"]),
                             _ms(faiss["median_ms"]) if faiss else "--",
                             _ratio(ours["median_ms"], faiss["median_ms"] if faiss else None),
                             _ms(best), _ratio(ours["median_ms"], best),
                             _ms(bound), "--" if not bound else f"{ours['median_ms'] / bound:.1f}x",
                             _mb(ours["index_bytes"]), _mb(ours.get("working_bytes")),
                             f"{ours.get('overlap_at_k', 0):.3f}"])
        bw_text = (f"Copy bandwidth of this machine: {bw[0]['copy_gb_per_s']:.1f} GB/s "
                   f"({bw[0]['method']}); the bound is the scanned vector bytes at that rate.\n\n") if bw else ""
        k = recs[0]["k"]
        return (f"## Exact search vs faiss IndexFlatIP (dim {recs[0]['dim']}, top-{k})\n\n" + bw_text
                + _table(["gallery", "batch", "threads", "ours", "ours ms", "faiss ms", "ours / faiss",
                          "best faiss ms", "ours / best faiss", "bandwidth bound ms", "ours / bound", "index MB",
                          "working MB", f"overlap@{k} with faiss"], rows, "lrrlrrrrrrrrrr")
                + f"\n✓: within {SEARCH_RATIO_TARGET}x. Latency per call (one batch of queries). faiss: as shipped; "
                  "best faiss: the faster of as-shipped and BLAS forced (`distance_compute_blas_threshold = 0`). "
                  "faiss scans float32 (index MB = 4 bytes x dim per vector); ours scans the stored dtype. "
                  "The bound assumes the vectors stream from memory: a gallery that fits in the caches "
                  "(10k x 128 float32 = 5 MB) can beat it.\n")

    def devices(self) -> str:
        recs = sorted((r for r in self.by_kind["latency"] if r["source"] != "host"),
                      key=lambda r: (machine_name(r["machine"]), _artefact_order(r["artefact"]), r["runtime"],
                                     r["threads"]))
        skipped = [r for r in self.by_kind["skipped"] if r["source"] != "host"]
        if not recs and not skipped:
            return ""
        rows = [[machine_name(r["machine"]), r["artefact"], r["runtime"], str(r["threads"] or "--"),
                 _ms(r.get("median_ms")), _ms(r["mean_ms"]), _ms(r["min_ms"]), _ms(r.get("p90_ms")),
                 str(r["runs"])] for r in recs]
        out = "## Devices\n\n" + _table(["device", "artefact", "runtime", "threads", "median ms", "mean ms",
                                          "min ms", "p90 ms", "runs"], rows, "lllrrrrrr")
        out += "\nbenchmark_model reports no median: its rows show the mean (and min).\n"
        if skipped:
            out += "\n" + "\n".join(f"- {machine_name(r['machine'])} {r['artefact']} {r['what']}: {r['reason']}"
                                    for r in skipped) + "\n"
        return out

    def profiles(self) -> str:
        recs = self._host("op_profile")
        if not recs:
            return ""
        arts = sorted({r["artefact"] for r in recs}, key=_artefact_order)
        ops: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for r in recs:
            ops[r["op_type"]][r["artefact"]] = r
        order = sorted(ops, key=lambda op: -max(v["total_ms_per_run"] for v in ops[op].values()))
        rows = [[op] + [(f"{ops[op][a]['total_ms_per_run']:.3f} ({100 * ops[op][a]['share']:.0f} %)"
                         if a in ops[op] else "--") for a in arts] for op in order]
        return "## ONNX Runtime per-op profile (ms per run, share)\n\n" + _table(["op type"] + arts, rows)

    def skipped(self) -> str:
        recs = self._host("skipped")
        if not recs:
            return ""
        return "## Not measured here\n\n" + "\n".join(f"- {r['artefact']} ({r['what']}): {r['reason']}"
                                                      for r in recs) + "\n"

    # --------------------------------------------------------------- plots
    def plot_latency_vs_recall(self) -> Path | None:
        acc = {r["artefact"]: r for r in self._host("accuracy")}
        points = []
        for key, a in acc.items():
            lat = self._host_latency(key, 1) or next(
                (r for r in self._host("latency") if r["artefact"] == key and r["batch"] == 1), None)
            if lat:
                points.append((key, lat["median_ms"], 100 * a["recall@1"]))
        for r in self.by_kind["latency"]:  # device latencies at the host-measured Recall@1 of the same artefact
            if r["source"] != "host" and r["artefact"] in acc and r["batch"] == 1:
                label = f"{r['artefact']} {machine_name(r['machine']).split(' (')[0]} {r['runtime'].split('/')[-1]}"
                points.append((label, _latency_value(r), 100 * acc[r["artefact"]]["recall@1"]))
        if not points:
            return None
        plt = _pyplot()
        from matplotlib.ticker import ScalarFormatter

        fig, ax = plt.subplots(figsize=(7, 4.5))
        placed: list[tuple[float, float]] = []
        for label, x, y in points:
            ax.scatter(x, y)
            # Artefacts with identical numbers (onnx/fp32 and tflite/fp32) would print on top of each other.
            clash = sum(1 for px, py in placed if abs(px - x) / x < 0.08 and abs(py - y) < 0.6)
            placed.append((x, y))
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4 - 10 * clash), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("median latency, batch 1 (ms, log scale; host: 1 thread)")
        ax.set_ylabel("Recall@1 (%)")
        ax.set_title("Latency vs Recall@1 per artefact")
        ax.grid(True, alpha=0.3)
        return self._save(fig, "latency_vs_recall.png")

    def plot_search_scaling(self) -> Path | None:
        recs = self._host("search")
        if not recs:
            return None
        plt = _pyplot()
        batches = sorted({r["batch"] for r in recs})
        fig, axes = plt.subplots(1, len(batches), figsize=(5.5 * len(batches), 4.2), squeeze=False)
        threads = min(r["threads"] for r in recs)
        for ax, batch in zip(axes[0], batches, strict=True):
            series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            bound: dict[int, float] = {}
            for r in recs:
                if r["batch"] != batch or r["threads"] != threads:
                    continue
                name = (r["impl"].replace("-", " ", 1) if r["impl"].startswith("faiss")
                        else _search_label(f"{r['impl']}:{r['storage']}"))
                series[name].append((r["gallery_size"], r["median_ms"]))
                if r["storage"] == "int8" and r.get("bandwidth_bound_ms"):
                    bound[r["gallery_size"]] = r["bandwidth_bound_ms"]
            for name, pts in sorted(series.items()):
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
            if bound:
                xs = sorted(bound)
                ax.plot(xs, [bound[x] for x in xs], linestyle="--", color="grey", label="bandwidth bound (int8)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("gallery size (vectors)")
            ax.set_ylabel("latency per call (ms)")
            ax.set_title(f"batch {batch}, {threads} thread(s)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("Exact search latency vs gallery size")
        return self._save(fig, "search_scaling.png")

    def _save(self, fig: Any, name: str) -> Path:
        path = self.plots_dir / name
        fig.tight_layout()
        save_figure(fig, path, dpi=110)
        _pyplot().close(fig)
        self.plots.append(path)
        return path

    def markdown(self, out_dir: Path) -> str:
        figs = [p for p in (self.plot_latency_vs_recall(), self.plot_search_scaling()) if p is not None]
        parts = ["# DeepProduct benchmark report\n",
                 f"{len(self.records)} measurements from {len({r['run_id'] for r in self.records})} run(s). "
                 "Generated by `dp-bench report`; schema in docs/benchmarks.md.\n",
                 self.machines(), self.summary(), self.int8_speedup(), self.accuracy(), self.search()]
        if figs:
            parts.append("## Plots\n\n" + "\n".join(
                f"![{p.stem}]({os.path.relpath(p, out_dir)})" for p in figs) + "\n")
        parts += [self.devices(), self.profiles(), self.latency_details(), self.skipped()]
        return "\n".join(p for p in parts if p)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def build_report(inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
                 plots_dir: str | os.PathLike | None = None) -> tuple[Path, list[Path]]:
    """Read JSON-lines files, write the markdown report and its plots; returns (report, plots)."""
    out = Path(out)
    records = latest(read_records(inputs))
    if not records:
        raise ValueError("no records in the inputs")
    report = Report(records, Path(plots_dir) if plots_dir else out.parent)
    # Atomic, and marked as ours: the next run may replace it, a user's file of that name it may not
    write_text_atomic(out, MARKDOWN_MARKER + "\n" + report.markdown(out.parent), mode=ordinary_file_mode())
    return out, report.plots
