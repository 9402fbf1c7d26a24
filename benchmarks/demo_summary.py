"""The one-screen pass/fail summary printed at the end of ``make demo`` (also when a stage failed).

Why from the stages' output files: ``make`` stops at the first failing command, so the summary
runs after it either way (the Makefile's ``demo`` target calls it whatever the stages' exit
status) and judges each stage by what it wrote *during this run* -- files older than the run's
start stamp (``DEMO/.demo-start``, written by the Makefile) count as missing, so a stale output of
an earlier run never reads as a pass.

    python -m deepproduct.benchmarks.demo_summary --demo runs/demo [--status 2]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

START_STAMP = ".demo-start"


@dataclass
class Stage:
    name: str
    passed: bool | None  # None: not reached
    detail: str


def _fresh(path: Path, since: float) -> bool:
    return path.is_file() and path.stat().st_mtime >= since


def _load(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _data(demo: Path, since: float) -> tuple[bool | None, str]:
    manifest = demo / "data" / "manifest.csv"
    if not _fresh(manifest, since):
        return None, "no manifest.csv written"
    lines = manifest.read_text(encoding="utf-8").splitlines()[1:]
    splits = [line.split(",")[3] for line in lines if line.count(",") >= 3]
    return True, f"{len(lines)} images: {splits.count('train')} train, {splits.count('test')} held-out"


def _training(demo: Path, since: float) -> tuple[bool | None, str]:
    runs = sorted(p.parent for p in (demo / "train").glob("*/summary.json") if _fresh(p, since))
    if not runs:
        return None, "no training run finished"
    parts = []
    for run in runs:
        final = (_load(run / "summary.json") or {}).get("final", {})
        parts.append(f"{run.name} R@1 {_pct(final.get('recall@1'))}")
    base = _load(demo / "train" / "offtheshelf" / "eval.json")
    if isinstance(base, dict) and _fresh(demo / "train" / "offtheshelf" / "eval.json", since):
        parts.append(f"off-the-shelf {_pct(base.get('recall@1'))}")
    return _fresh(demo / "report" / "10-training.md", since), "; ".join(parts)


def _export(demo: Path, since: float) -> tuple[bool | None, str]:
    manifest = _load(demo / "export" / "manifest.json")
    if not _fresh(demo / "export" / "manifest.json", since) or not isinstance(manifest, dict):
        return None, "no export written (a failed parity check leaves none; see the log above)"
    gates, cosines = [], []
    for a in manifest.get("artefacts", []):
        for p in a.get("parity", [])[:1]:
            cosines.append(p.get("cosine_mean", 1.0))
            g = p.get("recall_gate")
            if g:
                gates.append(f"{a['format']}/{a['precision']} {-g['drop_points']:+.1f} pts (p={g['p_value']:.2g})")
    detail = f"{len(manifest.get('artefacts', []))} artefacts, min mean cos {min(cosines, default=1.0):.4f}"
    if gates:
        detail += "; R@1 vs fp32: " + ", ".join(gates)
    return bool(manifest.get("parity", {}).get("passed")), detail


def _search(demo: Path, since: float) -> tuple[bool | None, str]:
    parts, found = [], False
    for name in ("float32", "int8"):
        path = demo / "search" / f"sdk-{name}.json"
        doc = _load(path) if _fresh(path, since) else None
        if isinstance(doc, dict):
            found = True
            parts.append(f"{name} index R@1 {_pct(doc.get('recall@1'))}")
    for fmt in ("onnx", "tflite"):
        path = demo / "search" / f"sdk-{fmt}-int8-model.json"
        doc = _load(path) if _fresh(path, since) else None
        if isinstance(doc, dict):
            parts.append(f"{fmt} int8 model R@1 {_pct(doc.get('recall@1'))}")
    for label, sdk_file, base_run, base_key in (
            ("real-image transfer", "sdk-transfer.json", "offtheshelf", "transfer/pooled/recall@1"),
            ("print-screen transfer", "sdk-transfer-print.json", "offtheshelf-print", "recall@1")):
        path = demo / "search" / sdk_file
        doc = _load(path) if _fresh(path, since) else None
        if isinstance(doc, dict):
            base = _load(demo / "train" / base_run / "eval.json")
            ref = base.get(base_key) if isinstance(base, dict) else None
            parts.append(f"{label} R@1 {_pct(doc.get('recall@1'))} (off-the-shelf {_pct(ref)})")
    if not found:
        return None, "no SDK evaluation written"
    return _fresh(demo / "report" / "30-search.md", since), "; ".join(parts)


def _bench(demo: Path, since: float) -> tuple[bool | None, str]:
    from .results_table import latency_ratios  # one reading of the records for summary and README

    if not _fresh(demo / "bench" / "report.md", since):
        return None, "no benchmark report written"
    ratios = latency_ratios(demo / "bench" / "host.jsonl")
    parts = [f"{fmt} int8 {ratios[fmt]:.2f}x fp32 (1 thread)" for fmt in ("onnx", "tflite") if fmt in ratios]
    return True, "; ".join(parts) or "report written"


STAGES: list[tuple[str, Callable[[Path, float], tuple[bool | None, str]]]] = [
    ("1/5 data", _data), ("2/5 training", _training), ("3/5 export", _export),
    ("4/5 SDK search", _search), ("5/5 benchmark", _bench)]


def summarise(demo: Path) -> list[Stage]:
    stamp = demo / START_STAMP
    since = stamp.stat().st_mtime if stamp.is_file() else 0.0
    out = []
    for name, fn in STAGES:
        passed, detail = fn(demo, since)
        out.append(Stage(name, passed, detail))
    return out


def render(demo: Path, stages: list[Stage], status: int) -> str:
    ok = status == 0 and all(s.passed for s in stages)
    lines = [f"== make demo: {'PASSED' if ok else 'FAILED'} ({demo})"]
    for s in stages:
        mark = {True: "PASS", False: "FAIL", None: "----"}[s.passed]
        lines.append(f"  {mark}  {s.name:<15} {s.detail}")
    report = demo / "report" / "report.md"
    lines.append(f"  report: {report}" if ok else
                 f"  first failure: {next((s.name for s in stages if not s.passed), 'see the log above')}"
                 f" (exit status {status}); partial report sections in {demo / 'report'}")
    return "\n".join(lines)


@click.command()
@click.option("--demo", "demo", type=click.Path(path_type=Path), required=True, help="The DEMO folder.")
@click.option("--status", type=int, default=0, help="Exit status of the demo stages.")
def main(demo: Path, status: int) -> None:
    """Print the pass/fail summary of a make demo run; exit non-zero unless every stage passed."""
    stages = summarise(demo)
    click.echo(render(demo, stages, status))
    sys.exit(0 if status == 0 and all(s.passed for s in stages) else (status or 1))


if __name__ == "__main__":
    main()
