"""``dp-bench``: latency, size, accuracy retention and search scaling, merged into one report.

Every measuring command appends JSON lines (docs/benchmarks.md) to ``--out``; ``dp-bench report``
turns any set of such files -- host runs, converted phone runs -- into markdown and plots.
Figures are written to files, never asserted on.
"""

from __future__ import annotations

import functools
import glob
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from deepproduct.sdk.cli_boundary import boundary
from deepproduct.sdk.fileio import write_text_atomic
from deepproduct.sdk.output_policy import (
    MARKDOWN_MARKER,
    check_file_output,
    check_folder_output,
    write_marker,
)

from .runners import NotRunnableHere
from .schema import new_run_id, write_records

DEFAULT_OUT = "results/host.jsonl"


def _ints(text: str) -> list[int]:
    try:
        values = [int(t.replace("_", "")) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected positive integers, got {text!r}")
    return values


def _threads(text: str) -> list[int]:
    from .model_bench import parse_threads

    try:
        values = parse_threads(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if max(values, default=1) > 256:  # 100000 threads crashed faiss and hung onnxruntime
        raise click.BadParameter(f"at most 256 threads, got {max(values)}")
    return values


def _only(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _path_inputs(kwargs: dict[str, Any], outputs: Iterable[str]) -> list[str]:
    """Every other argument that names an existing file or folder: the command's inputs."""
    found: list[str] = []
    for name, value in kwargs.items():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if name not in outputs and isinstance(v, (str, Path)) and str(v) and os.path.lexists(v):
                found.append(str(v))
    return found


def outputs(**kinds: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check the named output options under the output policy *before* the measuring starts (a
    search benchmark takes minutes; a refused --out must cost nothing). ``kinds``: option name ->
    the file kind that may be replaced (docs/threat-model.md), None for "never one of the inputs" only."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            inputs = _path_inputs(kwargs, kinds)
            for name, kind in kinds.items():
                if kwargs.get(name):
                    check_file_output(kwargs[name], inputs, what=f"--{name.replace('_', '-')}", kind=kind)
            return fn(*args, **kwargs)
        return wrapper
    return decorate


def _save(records: list[dict], out: str, inputs: tuple = ()) -> None:
    check_file_output(out, inputs, what="records file (--out)", kind="jsonl-records")
    path = write_records(out, records)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    click.echo(f"{len(records)} records appended to {path} (load average 1 min: {load:.2f})")


def _echo_table(records: list[dict], kind: str) -> None:
    """A compact console view of what was just measured (the report has the full tables)."""
    for r in records:
        if r["kind"] != kind:
            continue
        if kind == "latency":
            click.echo(f"  {r['artefact']:<14} {r['runtime']:<16} threads {r['threads']}  batch {r['batch']:>2}  "
                       f"median {r['median_ms']:8.3f} ms  p90 {r['p90_ms']:8.3f}  min {r['min_ms']:8.3f}  "
                       f"{r['images_per_s']:8.1f} img/s")
        elif kind == "accuracy":
            cos = r["cosine_to_reference"]
            click.echo(f"  {r['artefact']:<14} R@1 {100 * r['recall@1']:5.1f}  R@5 {100 * r['recall@5']:5.1f}  "
                       f"MAP@R {100 * r['map@r']:5.1f}  cosine {cos if cos is None else round(cos, 5)}"
                       f"{'  FLAGGED' if r['flagged'] else ''}")
        elif kind == "search":
            ratio = f"  x{r['ratio_to_faiss']:.2f} vs faiss" if "ratio_to_faiss" in r else ""
            if "agrees_with_sdk" in r:
                ratio = f"  {'same' if r['agrees_with_sdk'] else 'DIFFERENT'} top-k as the SDK"
            click.echo(f"  {r['gallery_size']:>9,} {r['impl']:<33} {r['storage']:<7} batch {r['batch']:>3}  "
                       f"threads {r['threads']}  median {r['median_ms']:9.3f} ms  bound "
                       f"{r['bandwidth_bound_ms']:8.3f} ms{ratio}")
        elif kind == "skipped":
            click.echo(f"  skipped {r['artefact']} ({r['what']}): {r['reason']}")


@click.group(cls=boundary("dp-bench", known=(NotRunnableHere,)),
             context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """DeepProduct benchmarks: models, accuracy, search, profile, device imports, report."""


@main.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--checkpoint", type=click.Path(exists=True), help="PyTorch checkpoint: adds the eager reference.")
@click.option("--threads", default="1,2,N", show_default=True, help="Thread counts; N = this machine's cores.")
@click.option("--runs", default=50, show_default=True, help="Timed batch-1 runs per configuration.")
@click.option("--warmup", default=10, show_default=True, help="Untimed runs first.")
@click.option("--batch", "throughput_batch", default=32, show_default=True, help="Batch for images/s (0: skip).")
@click.option("--batch-runs", default=10, show_default=True, help="Timed runs at that batch.")
@click.option("--rounds", default=1, show_default=True,
              help="Repeat round-robin and keep each configuration's best median (shared machines).")
@click.option("--only", help="Comma-separated artefact keys or formats (onnx/int8,tflite,pytorch).")
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="JSON-lines file to append to.")
@outputs(out="jsonl-records")
def models(export_dir: str, checkpoint: str | None, threads: str, runs: int, warmup: int, throughput_batch: int,
           batch_runs: int, rounds: int, only: str | None, out: str) -> None:
    """Host latency (batch 1 per thread count, images/s at batch 32), size, params and MACs."""
    from .model_bench import bench_models

    records = bench_models(export_dir, checkpoint=checkpoint, threads=_threads(threads), runs=runs, warmup=warmup,
                           throughput_batch=throughput_batch, throughput_runs=batch_runs, rounds=rounds,
                           only=_only(only))
    _echo_table(records, "latency")
    _echo_table(records, "skipped")
    _save(records, out, (export_dir, checkpoint))


@main.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Dataset manifest CSV (dp-data synth writes one).")
@click.option("--checkpoint", type=click.Path(exists=True), help="PyTorch checkpoint: the cosine reference.")
@click.option("--split", default="test", show_default=True)
@click.option("--batch", default=32, show_default=True, help="Images per inference call.")
@click.option("--only", help="Comma-separated artefact keys or formats.")
@click.option("--out", default=DEFAULT_OUT, show_default=True)
@outputs(out="jsonl-records")
def accuracy(export_dir: str, data: str, checkpoint: str | None, split: str, batch: int, only: str | None,
             out: str) -> None:
    """Recall@1/5, MAP@R and cosine to PyTorch for every artefact that runs here."""
    from .accuracy import bench_accuracy

    records = bench_accuracy(export_dir, data, checkpoint=checkpoint, split=split, batch=batch, only=_only(only))
    _echo_table(records, "accuracy")
    _echo_table(records, "skipped")
    _save(records, out, (export_dir, data, checkpoint))


@main.command()
@click.option("--sizes", default="10000,100000,1000000", show_default=True)
@click.option("--dim", default=128, show_default=True)
@click.option("--batches", default="1,64", show_default=True)
@click.option("--threads", default="1", show_default=True, help="Thread counts for both implementations.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 10000))
@click.option("--runs", default=20, show_default=True, help="Timed calls (capped by --budget seconds).")
@click.option("--budget", default=8.0, show_default=True, help="Seconds of timed calls per configuration.")
@click.option("--storage", default="float32,int8", show_default=True)
@click.option("--cores", is_flag=True, help="Also time the JVM and JS cores' search on the same index files.")
@click.option("--core-runs", default=30, show_default=True, help="Timed queries per core configuration.")
@click.option("--out", default=DEFAULT_OUT, show_default=True)
@outputs(out="jsonl-records")
def search(sizes: str, dim: int, batches: str, threads: str, k: int, runs: int, budget: float, storage: str,
           cores: bool, core_runs: int, out: str) -> None:
    """The SDK's exact search (float32/int8) vs faiss IndexFlatIP and the bandwidth bound."""
    from .search_bench import bench_search

    storages = tuple(s.strip() for s in storage.split(",") if s.strip())
    records = bench_search(_ints(sizes), dim=dim, batches=_ints(batches), k=k, threads=_threads(threads),
                           storages=storages, runs=runs, budget_s=budget, cores=cores,
                           core_runs=core_runs)
    bw = next(r for r in records if r["kind"] == "bandwidth")
    click.echo(f"  copy bandwidth {bw['copy_gb_per_s']:.2f} GB/s")
    _echo_table(records, "search")
    _save(records, out)


@main.command()
@click.argument("artefacts", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256))
@click.option("--runs", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 1024))
@click.option("--md", "md_out", type=click.Path(dir_okay=False), help="Also write the table as markdown here.")
@click.option("--out", default=DEFAULT_OUT, show_default=True)
@outputs(out="jsonl-records", md_out="markdown")
def profile(artefacts: tuple[str, ...], threads: int, runs: int, warmup: int, batch: int, md_out: str | None,
            out: str) -> None:
    """Per-op-type time of ONNX artefacts (ONNX Runtime profiling), side by side."""
    from .machine import describe_host
    from .profile import profile_onnx, profile_table
    from .schema import make_record

    run_id = new_run_id()
    for a in artefacts:  # a FIFO would block onnxruntime's open forever
        if not Path(a).is_file():
            raise ValueError(f"{a}: not a regular file (a FIFO, device or folder)")
    profiles = [profile_onnx(a, threads=threads, runs=runs, warmup=warmup, batch=batch) for a in artefacts]
    table = profile_table(profiles)
    click.echo(table)
    if md_out:
        write_text_atomic(md_out, f"{MARKDOWN_MARKER}\n# ONNX Runtime per-op profile ({threads} thread(s), "
                                  f"batch {batch}, {runs} runs)\n\n{table}")
    records = [make_record("op_profile", machine=describe_host(), run_id=run_id, artefact=p.artefact,
                           threads=p.threads, op_type=o.op_type, nodes=o.nodes, total_ms_per_run=o.total_ms_per_run,
                           share=o.share, runs=p.runs, batch=batch, run_ms_median=p.run_ms_median)
               for p in profiles for o in p.ops]
    _save(records, out)


@main.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--images", default=3000, show_default=True, type=click.IntRange(1), help="Synthetic catalogue size.")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(16), help="Photo side in px.")
@click.option("--actors", default="1,2", show_default=True, help="Ray actor counts (one thread each).")
@click.option("--shard-size", default=100, show_default=True, type=click.IntRange(1))
@click.option("--format", "fmt", default="onnx", show_default=True)
@click.option("--precision", default="fp32", show_default=True)
@click.option("--address", default=None, help="A running Ray cluster (default: a private local one per run).")
@click.option("--out", default=DEFAULT_OUT, show_default=True)
@outputs(out="jsonl-records")
def distributed(export_dir: str, images: int, image_size: int, actors: str, shard_size: int, fmt: str,
                precision: str, address: str | None, out: str) -> None:
    """One-process dp-search build vs --engine ray with 1 and N actors, images/s and overhead ratio."""
    from .distributed_bench import bench_distributed

    records = bench_distributed(export_dir, images=images, image_size=image_size, actors=_ints(actors),
                                shard_size=shard_size, fmt=fmt, precision=precision, address=address, say=click.echo)
    _save(records, out, (export_dir,))


def _phone_import(name: str, parser: str, script: str, default_out: str) -> None:
    """Register ``dp-bench NAME RUN_DIR``: a phone runner's output folder -> records (one shape for all)."""

    @main.command(name, help=f"Convert benchmarks/android/{script} output (device.txt + logs/) to records.")
    @click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
    @click.option("--out", default=default_out, show_default=True)
    @outputs(out="jsonl-records")
    def command(run_dir: str, out: str) -> None:
        records = importlib.import_module(f".{parser}", __package__).records_from_dir(run_dir)
        _echo_table(records, "skipped")
        _save(records, out)


for _args in (("import-android", "android_parser", "run_benchmark_model.sh", "results/android.jsonl"),
              ("import-executorch", "executorch_parser", "run_executor_runner.sh",
               "results/android-executorch.jsonl")):
    _phone_import(*_args)


@main.command("import-ios")
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--device", required=True, help="e.g. 'iPhone 15 Pro'")
@click.option("--os-version", required=True, help="e.g. 17.5")
@click.option("--chip", default="", help="e.g. A17 Pro")
@click.option("--csv", "is_csv", is_flag=True, help="LOG is a CSV copied from Xcode's performance report.")
@click.option("--out", default="results/ios.jsonl", show_default=True)
@outputs(out="jsonl-records")
def import_ios(log: str, device: str, os_version: str, chip: str, is_csv: bool, out: str) -> None:
    """Convert an XCTest measure log (or an Xcode performance-report CSV) to records."""
    from .ios_parser import ios_machine, records_from_report_csv, records_from_xctest_log

    machine = ios_machine(device, os_version, chip)
    records = records_from_report_csv(log, machine) if is_csv else records_from_xctest_log(log, machine)
    if not records:
        raise click.ClickException(f"{log}: no testLatency_* measurements found")
    _save(records, out)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--inputs", "patterns", multiple=True, help="JSON-lines files or glob patterns (repeatable).")
@click.option("--out", default="results/report.md", show_default=True)
@click.option("--plots-dir", help="Where the PNGs go (default: beside the report).")
@outputs(out="markdown", plots_dir=None)
def report(paths: tuple[str, ...], patterns: tuple[str, ...], out: str, plots_dir: str | None) -> None:
    """Merge host and device JSON lines into a markdown report with plots."""
    from .report import build_report

    files = sorted({f for p in (*patterns, *paths) for f in (glob.glob(p) or [p])})
    missing = [f for f in files if not Path(f).is_file()]
    if not files or missing:
        raise click.ClickException(f"no such input file(s): {', '.join(missing) or 'none given'}")
    check_file_output(out, files, what="report (--out)", kind="markdown")
    path, plots = build_report(files, out, plots_dir)
    click.echo(f"report: {path} ({len(plots)} plot(s): {', '.join(p.name for p in plots)})")


def _analysis(run, table, json_out: str | None) -> None:
    """Run one offline analysis: its markdown table on stdout, its figures as JSON in ``json_out``,
    and a one-line error (not a traceback) for an export or manifest it cannot read."""
    import json

    from deepproduct.sdk.fileio import write_text_atomic

    try:
        result = run()
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(table(result))
    if json_out:
        # Marked as ours (output policy): the next run may replace it, a user's notes.json it may not
        write_text_atomic(json_out, json.dumps({"written_by": "DeepProduct dp-bench", **result}, indent=2,
                                               allow_nan=False) + "\n")


@main.command("head-sweep")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Dataset manifest CSV: heads fitted on its train split, scored on its test split.")
@click.option("--transfer", type=click.Path(exists=True, dir_okay=False),
              help="A second manifest scored on its test split (e.g. the real-image transfer set).")
@click.option("--threads", default=2, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False), help="Also write the figures as JSON here.")
@outputs(json_out="dp-json")
def head_sweep_command(export_dir: str, data: str, transfer: str | None, threads: int, json_out: str | None) -> None:
    """Refit the PCA head with milder whitening: Recall@1 and int8 cosine of each (benchmarks/head_sweep.py)."""
    from .head_sweep import head_sweep, sweep_table

    _analysis(lambda: head_sweep(export_dir, data, transfer, threads=threads), sweep_table, json_out)


@main.command("int8-budget")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Dataset manifest CSV: the images the cosines are measured on.")
@click.option("--split", default="test", show_default=True)
@click.option("--every", default=1, show_default=True, help="Use every N-th image of the split.")
@click.option("--threads", default=2, show_default=True)
@click.option("--json-out", type=click.Path(dir_okay=False), help="Also write the figures as JSON here.")
@outputs(json_out="dp-json")
def int8_budget_command(export_dir: str, data: str, split: str, every: int, threads: int,
                        json_out: str | None) -> None:
    """Where the int8 ONNX model's cosine loss comes from: weights, residual-stream or post-ReLU6
    activations, each put back in float by graph surgery (benchmarks/int8_budget.py)."""
    from .int8_budget import budget_table, int8_budget

    _analysis(lambda: int8_budget(export_dir, data, split=split, every=every, threads=threads), budget_table, json_out)


@main.command()
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", type=click.Path(exists=True, dir_okay=False), help="Dataset manifest for accuracy.")
@click.option("--checkpoint", type=click.Path(exists=True))
@click.option("--out-dir", default="runs/bench", show_default=True)
@click.option("--full", is_flag=True, help="The full protocol (50 runs, 1/2/N threads, 10k-1M search).")
@click.option("--search-sizes", help="Gallery sizes (default: 10000,100000; with --full also 1000000).")
@click.option("--only", help="Comma-separated artefact keys or formats.")
def quick(export_dir: str, data: str | None, checkpoint: str | None, out_dir: str, full: bool,
          search_sizes: str | None, only: str | None) -> None:
    """Everything in one go, short by default (make demo's last step): models, accuracy, search, report."""
    from .accuracy import bench_accuracy
    from .model_bench import bench_models, parse_threads
    from .report import build_report
    from .search_bench import bench_search

    out = Path(out_dir)
    # One fresh run per folder (the report describes exactly this run): only a folder dp-bench
    # marked as its own is refreshed; a user's folder is refused (docs/threat-model.md).
    check_folder_output(out, [export_dir, data, checkpoint], overwrite=True, what="--out-dir", kind="bench-folder")
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "dp-bench", "bench-folder")
    jsonl = out / "host.jsonl"
    if jsonl.exists():
        jsonl.unlink()
    run_id = new_run_id()
    records = bench_models(export_dir, checkpoint=checkpoint, threads=parse_threads("1,2,N" if full else "1,N"),
                           runs=50 if full else 10, warmup=10 if full else 3, throughput_runs=10 if full else 3,
                           rounds=5 if full else 3, only=_only(only), run_id=run_id)
    _echo_table(records, "latency")
    if data:
        acc = bench_accuracy(export_dir, data, checkpoint=checkpoint, only=_only(only), run_id=run_id)
        _echo_table(acc, "accuracy")
        records += acc
    sizes = _ints(search_sizes) if search_sizes else [10_000, 100_000, 1_000_000] if full else [10_000, 100_000]
    found = bench_search(sizes, runs=20 if full else 5, budget_s=8.0 if full else 2.0, run_id=run_id)
    _echo_table(found, "search")
    records += found
    _save(records, str(jsonl))
    path, plots = build_report([jsonl], out / "report.md")
    click.echo(f"report: {path} ({len(plots)} plot(s))")


@main.command()
@click.option("--transfer", type=click.Path(exists=True, dir_okay=False),
              help="Transfer-set manifest (dp-data transfer).")
@click.option("--backbones", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2", show_default=True)
@click.option("--sizes", default="160,192,224", show_default=True, help="Comma-separated input sizes (px).")
@click.option("--checkpoint", type=click.Path(exists=True), help="Score this trained model instead (its embedding).")
@click.option("--threads", default=1, show_default=True)
@click.option("--runs", default=20, show_default=True, help="Timed batch-1 calls per pair.")
@click.option("--max-products", default=None, type=int, help="Score a fixed seeded subset of the products.")
@click.option("--out", default="results/pareto.jsonl", show_default=True, help="JSON-lines file to append to.")
@click.option("--plot", "plot_path", default="results/pareto.png", show_default=True)
@click.option("--plot-only", is_flag=True, help="Only re-plot the records already in --out.")
@click.option("--recall", "recall_files", multiple=True, metavar="STYLE=FILE",
              help="Study mode: paired_recall records of one style (labels sN-CONFIG); repeat per style.")
@click.option("--latency", "latency_file", type=click.Path(exists=True, dir_okay=False),
              help="Study mode: dp-bench models records (1-thread int8 latency by backbone and input size).")
@click.option("--default", "default_config", help="Study mode: the configuration to star as the default.")
@click.option("--table", "table_path", help="Study mode: also write the study as JSON (and a .md table beside it).")
@outputs(plot_path="png", table_path="dp-json")
def pareto(transfer: str | None, backbones: str, sizes: str, checkpoint: str | None, threads: int, runs: int,
           max_products: int | None, out: str, plot_path: str, plot_only: bool, recall_files: tuple[str, ...],
           latency_file: str | None, default_config: str | None, table_path: str | None) -> None:
    """Latency vs transfer-set Recall@1 for every backbone x input size, with the Pareto front.

    Study mode (--recall STYLE=FILE ... --latency HOST.jsonl): trained configurations over seeds and
    styles against the exported int8 runtimes' latency, from records already measured."""
    from .pareto import append_records, measure, plot, plot_study, read_records, study_points, study_table

    if recall_files:
        if not latency_file:
            raise click.UsageError("--recall goes with --latency HOST.jsonl")
        pairs = [r.partition("=") for r in recall_files]
        if any(not sep or not style or not path for style, sep, path in pairs):
            raise click.UsageError("--recall takes STYLE=FILE, e.g. phone=runs/study/paired-phone.jsonl")
        md = Path(table_path).with_suffix(".md") if table_path else None
        if md is not None:  # the markdown sibling under the output policy too, before any work
            check_file_output(md, [latency_file, *(p for _, _, p in pairs)], what="table (.md)", kind="markdown")
        try:
            points = study_points({style: path for style, _, path in pairs}, latency_file)
            fronts = plot_study(points, plot_path, default=default_config)
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(str(exc)) from exc
        if md is not None:
            from deepproduct.sdk.jsonio import dumps

            write_text_atomic(table_path, dumps({"written_by": "DeepProduct dp-bench pareto", "default": default_config,
                                                 "fronts": fronts, "points": points}, indent=2))
            write_text_atomic(md, MARKDOWN_MARKER + "\n" + study_table(points, default_config))
        click.echo(study_table(points, default_config))
        click.echo(f"wrote {plot_path}; Pareto fronts: " + "; ".join(f"{s}: {', '.join(f)}" for s, f in fronts.items()))
        return
    if not transfer:
        raise click.UsageError("--transfer is required (or study mode: --recall STYLE=FILE --latency FILE)")
    try:
        if not plot_only:
            size_list = [int(s) for s in sizes.split(",") if s.strip()]
            records = measure(transfer, [b for b in backbones.split(",") if b], size_list, checkpoint=checkpoint,
                              threads=threads, runs=runs, max_products=max_products, say=click.echo)
            append_records(out, records)
            click.echo(f"{len(records)} records appended to {out}")
        records = read_records(out)
        front = plot(records, plot_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {plot_path}; Pareto front: "
               + ", ".join(f"{records[i]['backbone']}@{records[i]['input_size']}" for i in front))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _register_ablation() -> None:
    """``dp-bench ablation`` is the training side's recipe ablation (it needs the train extra)."""
    try:
        from deepproduct.training.ablation import main as ablation_main
    except ImportError:  # the SDK-only install has no torch: no ablation command then
        return
    main.add_command(ablation_main, name="ablation")


_register_ablation()

