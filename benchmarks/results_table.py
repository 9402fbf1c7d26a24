"""The README's results table, generated: figures collected from a ``make demo`` folder into a JSON
record, and the table rendered from that record, never typed by hand.

Why: figures copied by hand from several runs drifted (a fresh clone reproduced every demo figure
but one). Now ``make demo`` writes ``DEMO/report/summary.json`` (:func:`collect`: the figures plus
the machine, its load, the commit and the date); a maintainer copies a run's file to
``docs/results/current.json``; :func:`render` turns it into the README's table between the
``<!-- results:begin -->`` / ``<!-- results:end -->`` markers, and a test fails when the two
disagree.

    python -m deepproduct.benchmarks.results_table collect --demo runs/demo --out runs/demo/report/summary.json
    python -m deepproduct.benchmarks.results_table readme [--current docs/results/current.json] [--check]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import click

from deepproduct.sdk.fileio import write_text_atomic

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FORMAT = "deepproduct-demo-results"
VERSION = 1


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _r1(path: Path, key: str = "recall@1") -> dict[str, float] | None:
    doc = _load(path)
    if not isinstance(doc, dict) or not isinstance(doc.get(key), (int, float)):
        return None
    out = {"recall@1": float(doc[key])}
    if isinstance(doc.get("queries"), (int, float)):
        out["queries"] = int(doc["queries"]) - int(doc.get("unmatched_queries", 0) or 0)
    return out


def latency_ratios(records: Path) -> dict[str, float]:
    """fp32 over int8 median latency at 1 thread, batch 1, per format, from a records file."""
    median: dict[str, float] = {}
    for line in records.read_text(encoding="utf-8").splitlines() if records.is_file() else []:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("kind") == "latency" and r.get("threads") == 1 and r.get("batch", 1) == 1:
            median[r["artefact"]] = float(r["median_ms"])
    return {fmt: round(median[f"{fmt}/fp32"] / median[f"{fmt}/int8"], 2)
            for fmt in ("onnx", "tflite", "executorch") if f"{fmt}/fp32" in median and f"{fmt}/int8" in median}


def _git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def collect(demo: Path, repo: Path | None = None) -> dict[str, Any]:
    """The demo's figures from the files its stages wrote, plus where and when they were measured."""
    from .machine import describe_host

    search, train = demo / "search", demo / "train"
    offtheshelf = _load(train / "offtheshelf" / "eval.json") or {}
    offtheshelf_print = _load(train / "offtheshelf-print" / "eval.json") or {}
    manifest = _load(demo / "export" / "manifest.json") or {}
    cosines = {f"{a['format']}/{a['precision']}": round(float(a["parity"][0]["cosine_mean"]), 4)
               for a in manifest.get("artefacts", []) if a.get("parity") and a["precision"] == "int8"}
    host = describe_host()
    figures = {
        "heldout": {"sdk_fp32": _r1(search / "sdk-float32.json"), "sdk_int8_index": _r1(search / "sdk-int8.json"),
                    "onnx_int8_model": _r1(search / "sdk-onnx-int8-model.json"),
                    "tflite_int8_model": _r1(search / "sdk-tflite-int8-model.json"),
                    "offtheshelf": _r1(train / "offtheshelf" / "eval.json")},
        "transfer_phone": {"sdk": _r1(search / "sdk-transfer.json"),
                           "offtheshelf": ({"recall@1": float(offtheshelf["transfer/pooled/recall@1"])}
                                           if "transfer/pooled/recall@1" in offtheshelf else None)},
        "transfer_print": {"sdk": _r1(search / "sdk-transfer-print.json"),
                           "offtheshelf": _r1(train / "offtheshelf-print" / "eval.json") if offtheshelf_print else None},
        "int8_cosine": cosines,
        "int8_speedup_1_thread": latency_ratios(demo / "bench" / "host.jsonl"),
    }
    # Which transfer sets these are: comparable across machines only when the hashes are equal.
    transfer_sets = {style: (_load(demo / folder / "transfer.json") or {}).get("manifest_sha256")
                     for style, folder in (("phone", "transfer"), ("print_screen", "transfer-print"))}
    return {"format": FORMAT, "version": VERSION, "figures": figures,
            "model": {k: (manifest.get("model") or {}).get(k)
                      for k in ("name", "backbone", "embedding_dim", "input_size", "trained_input_size")},
            "machine": {"cpu_model": host.get("cpu_model"), "cores": host.get("cores"),
                        "cpu_flags": host.get("cpu_flags"),
                        "load_1min_at_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None},
            "transfer_manifest_sha256": transfer_sets,
            "commit": _git_commit(repo or Path.cwd()), "date": dt.date.today().isoformat()}


def _pct(entry: dict | None) -> str:
    return "n/a" if not entry else f"{100 * entry['recall@1']:.1f}"


def _n(entry: dict | None) -> str:
    return f" ({entry['queries']} q)" if entry and entry.get("queries") else ""


def _gain(a: dict | None, b: dict | None) -> str:
    return "n/a" if not a or not b else f"{100 * (a['recall@1'] - b['recall@1']):+.1f}"


def render(doc: dict[str, Any]) -> str:
    """The README's results block: one table of Recall@1 through the SDK, plus int8 facts."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} record")
    f = doc["figures"]
    h, tp, tq = f["heldout"], f["transfer_phone"], f["transfer_print"]
    m = doc.get("machine", {})
    model = doc.get("model") or {}
    size, trained = model.get("input_size"), model.get("trained_input_size")
    at = (f" at {size} px" + (f", trained at {trained} px" if trained and trained != size else "")) if size else ""
    lines = [
        f"| Recall@1, through the SDK (ONNX fp32{at}) | shipped model | off-the-shelf features, same size "
        "| gain (points) |",
        "|---|---:|---:|---:|",
        f"| procedural held-out split{_n(h['sdk_fp32'])} | {_pct(h['sdk_fp32'])} | {_pct(h['offtheshelf'])} "
        f"| {_gain(h['sdk_fp32'], h['offtheshelf'])} |",
        f"| real-image transfer, phone style{_n(tp['sdk'])} | {_pct(tp['sdk'])} | {_pct(tp['offtheshelf'])} "
        f"| {_gain(tp['sdk'], tp['offtheshelf'])} |",
        f"| real-image transfer, print/screen style{_n(tq['sdk'])} | {_pct(tq['sdk'])} | {_pct(tq['offtheshelf'])} "
        f"| {_gain(tq['sdk'], tq['offtheshelf'])} |",
        "",
        f"int8 on the held-out split: int8 index {_pct(h['sdk_int8_index'])}, ONNX int8 model "
        f"{_pct(h['onnx_int8_model'])}, TFLite int8 model {_pct(h['tflite_int8_model'])}; mean cosine to PyTorch "
        + ", ".join(f"{k.split('/')[0]} {v:.4f}" for k, v in sorted(f["int8_cosine"].items()))
        + "; int8 speed-up at 1 thread "
        + ", ".join(f"{k} {v:.2f}x" for k, v in sorted(f["int8_speedup_1_thread"].items())) + ".",
        "",
        f"Measured by `make demo` (seed 0) on {m.get('cpu_model')}, {m.get('cores')} cores "
        f"(1-minute load {m.get('load_1min_at_end')} at the end), commit {doc.get('commit')}, {doc.get('date')}; "
        "from [docs/results/current.json](docs/results/current.json), rendered by "
        "`python -m deepproduct.benchmarks.results_table readme`.",
    ]
    return "\n".join(lines)


def replace_block(readme_text: str, block: str) -> str:
    if BEGIN not in readme_text or END not in readme_text:
        raise ValueError(f"the README has no {BEGIN} ... {END} block")
    head, rest = readme_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


@click.group()
def main() -> None:
    """Demo results: collect them from a make demo folder, render them into the README."""


@main.command("collect")
@click.option("--demo", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def collect_cmd(demo: Path, out: Path) -> None:
    """Write DEMO's figures (and machine, load, commit, date) as JSON."""
    write_text_atomic(out, json.dumps(collect(demo), indent=2, allow_nan=False) + "\n")
    click.echo(f"wrote {out}")


@main.command("readme")
@click.option("--current", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("docs/results/current.json"), show_default=True)
@click.option("--readme", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=Path("README.md"),
              show_default=True)
@click.option("--check", is_flag=True, help="Only check that the README's table matches (exit 1 if not).")
def readme_cmd(current: Path, readme: Path, check: bool) -> None:
    """Render CURRENT into README's results block (or --check that it is up to date)."""
    text = readme.read_text(encoding="utf-8")
    new = replace_block(text, render(json.loads(current.read_text(encoding="utf-8"))))
    if check:
        if new != text:
            raise click.ClickException(f"{readme}: results table differs from {current}; run without --check")
        click.echo(f"{readme}: results table matches {current}")
        return
    write_text_atomic(readme, new)
    click.echo(f"rendered {current} into {readme}")


if __name__ == "__main__":
    main()
