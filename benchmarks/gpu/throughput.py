"""What the GPU check measures: training-step throughput and peak GPU memory, the data loader's
rate alone, and the default recipe on the GPU and on the same machine's CPU.

Run from the repository root (``python -m benchmarks.gpu.throughput SUBCOMMAND ...``); the
shell script ``benchmarks/gpu/run_gpu_check.sh`` calls one subcommand per step so that each can
be given its own time limit. Every figure is written as a benchmark record (benchmarks/schema.py).

Why ``latency`` records: schema version 1 has no kind for a training step, and a new kind
would need every reader to learn it. A training-step record is a ``latency`` record whose
``format`` is ``pytorch-train`` (the data loader's: ``dataloader``) and whose ``measure`` says
what the time covers; the GPU's name, memory and CUDA versions go into ``machine['gpu']``.
Keep these files out of ``dp-bench report``'s inputs: its latency tables are inference tables.

How the step is timed: the trainer's own ``_train_step`` (host-to-device copy, forward under the
trainer's autocast, losses, backward, clipping, AdamW step), with ``torch.cuda.synchronize()``
before and after, so each sample is the GPU's time and not the launch time. ``sweep`` feeds a few
batches taken once from the loader again and again: the GPU's rate alone. ``recipe`` iterates the
recipe's own loader: its rate is what training gets, loader included. ``loader`` times the
loader alone. Comparing the last with ``sweep`` says whether training is GPU- or loader-bound.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from deepproduct.benchmarks.machine import describe_host, usable_cores
from deepproduct.benchmarks.schema import make_record, new_run_id, read_records, write_records
from deepproduct.benchmarks.timing import summarise

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = REPO / "configs" / "demo.yaml"
TRAIN_FORMAT = "pytorch-train"
LOADER_FORMAT = "dataloader"


# -- small pure helpers (tested on CPU) ------------------------------------------------------------

def parse_pk(text: str) -> tuple[int, int]:
    """``"16x4"`` -> ``(16, 4)``: products per batch P and images per product K."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected PxK such as 16x4, got {text!r}")
    p, k = int(parts[0]), int(parts[1])
    if p < 1 or k < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: need P >= 1 and K >= 2")
    return p, k


def parse_list(text: str, item: type = str) -> list[Any]:
    """A comma-separated list (``"on,off"``, ``"1,8"``); empty items are dropped."""
    return [item(x.strip()) for x in text.split(",") if x.strip()]


def parse_switch(text: str) -> bool:
    if text.lower() in ("on", "true", "1", "yes"):
        return True
    if text.lower() in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {text!r}")


def mib(n_bytes: int) -> float:
    return round(n_bytes / 2**20, 1)


def gpu_description() -> dict[str, Any] | None:
    """The card a figure was taken on (None without CUDA): a GPU figure without it is not comparable."""
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "count": torch.cuda.device_count(),
            "memory_mib": mib(props.total_memory), "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "torch": torch.__version__}


def describe_machine(device: str) -> dict[str, Any]:
    """The host record (benchmarks/machine.py), plus the GPU on a CUDA measurement."""
    machine = describe_host()
    gpu = gpu_description() if device == "cuda" else None
    if gpu is not None:
        machine["gpu"] = gpu
    return machine


def precision_of(amp: bool) -> str:
    """The trainer's AMP is float16 autocast (training/trainer.py); TF32 use is recorded separately."""
    return "amp-fp16" if amp else "fp32"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StepTimes:
    """Per-step seconds after the warm-up: ``compute`` is the synchronised step alone, ``wall``
    the step plus the wait for its batch (equal to compute when the batches are reused)."""

    compute: list[float]
    wall: list[float]
    batch: int
    warmup: int
    peak_allocated: int | None = None
    peak_reserved: int | None = None

    def images_per_s(self, which: str = "compute") -> float:
        times = self.compute if which == "compute" else self.wall
        return self.batch * len(times) / max(sum(times), 1e-12)


# -- building the trainer from the recipe ------------------------------------------------------------

def recipe_overrides(manifest: str | Path, work: str | Path, name: str, device: str, image_size: int,
                     steps: int, pk: tuple[int, int] | None = None, amp: bool | None = None,
                     threads: int | None = None, workers: int | None = None,
                     extra: Sequence[str] = ()) -> list[str]:
    """``key=value`` overrides that turn the recipe into a fixed-length run on one device."""
    out = [f"data.manifest={manifest}", f"out_dir={work}", f"name={name}", f"device={device}",
           f"data.image_size={image_size}", "optim.epochs=1", f"optim.steps_per_epoch={steps}",
           "eval.transfer_manifest=null"]
    if pk is not None:
        out += [f"data.products_per_batch={pk[0]}", f"data.images_per_product={pk[1]}"]
    if amp is not None:
        out.append(f"amp={'true' if amp else 'false'}")
    if threads is not None:
        out.append(f"threads={threads}")
    if workers is not None:
        out.append(f"data.workers={workers}")
    return out + list(extra)


def build_trainer(config: str | Path, overrides: list[str]) -> Any:
    from deepproduct.training.config import load_config
    from deepproduct.training.trainer import Trainer

    return Trainer(load_config(config, overrides), progress=False)


def trainer_batches(trainer: Any, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The trainer's own loader for one epoch, built as ``Trainer.train`` builds it."""
    from deepproduct.training.data.product_dataset import TrainImages
    from deepproduct.training.trainer import epoch_seed

    cfg = trainer.cfg
    trainer.sampler.set_epoch(epoch)
    dataset = TrainImages(trainer.train_items, cfg.data.image_size, cfg.data.augment)
    loader = DataLoader(dataset, batch_sampler=trainer.sampler, num_workers=cfg.data.workers,
                        generator=torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch)),
                        persistent_workers=False)
    yield from loader


def time_steps(trainer: Any, steps: int, warmup: int, reuse: int | None = None) -> StepTimes:
    """Run ``warmup + steps`` training steps and time the last ``steps``.

    ``reuse``: take that many batches from the loader first and cycle through them (the GPU's
    rate alone); None: iterate the loader as training does (the rate training gets).
    """
    device = trainer.device
    trainer._set_train_mode()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    source: Iterator = trainer_batches(trainer)
    if reuse:
        cached = [next(source) for _ in range(reuse)]
        source = (cached[i % len(cached)] for i in range(warmup + steps))
    compute: list[float] = []
    wall: list[float] = []
    batch = 0
    sync(device)
    last = time.perf_counter()
    for i, (x, labels, domains) in enumerate(source):
        if i >= warmup + steps:
            break
        trainer._set_lr()
        sync(device)
        t0 = time.perf_counter()
        trainer._train_step(x, labels, domains, 0)
        sync(device)
        t1 = time.perf_counter()
        trainer.step += 1
        if i >= warmup:
            compute.append(t1 - t0)
            wall.append(t1 - last)
            batch = int(x.shape[0])
        last = t1
    if len(compute) < steps:
        raise RuntimeError(f"the loader gave {len(compute) + warmup} batches, {warmup + steps} were asked for")
    times = StepTimes(compute, wall, batch, warmup)
    if device.type == "cuda":
        times.peak_allocated = int(torch.cuda.max_memory_allocated(device))
        times.peak_reserved = int(torch.cuda.max_memory_reserved(device))
    return times


def train_record(trainer: Any, times: StepTimes, *, run_id: str, measure: str, which: str,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``latency`` record of ``pytorch-train`` steps (see the module docstring)."""
    cfg = trainer.cfg
    samples = times.compute if which == "compute" else times.wall
    stats = summarise([t * 1e3 for t in samples], times.warmup)
    fields: dict[str, Any] = {
        "artefact": f"train:{cfg.name}/{cfg.model.backbone}", "format": TRAIN_FORMAT,
        "precision": precision_of(trainer.use_amp), "runtime": f"torch-{trainer.device.type}",
        "threads": torch.get_num_threads(), "batch": times.batch, "runs": stats.runs, "warmup": stats.warmup,
        "median_ms": stats.median_ms, "p90_ms": stats.p90_ms, "min_ms": stats.min_ms,
        "mean_ms": stats.mean_ms, "images_per_s": round(times.images_per_s(which), 2),
        "measure": measure, "input_size": cfg.data.image_size,
        "products_per_batch": cfg.data.products_per_batch, "images_per_product": cfg.data.images_per_product,
        "amp": bool(trainer.use_amp), "channels_last": bool(cfg.channels_last and trainer.device.type == "cuda"),
        "loader_workers": cfg.data.workers, "freeze_stages": cfg.model.freeze_stages,
        "images_per_s_compute": round(times.images_per_s("compute"), 2),
        "images_per_s_wall": round(times.images_per_s("wall"), 2),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if trainer.device.type == "cuda":
        fields.update(peak_gpu_allocated_mib=mib(times.peak_allocated or 0),
                      peak_gpu_reserved_mib=mib(times.peak_reserved or 0),
                      tf32_conv=bool(torch.backends.cudnn.allow_tf32),
                      tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32))
    fields.update(extra or {})
    return make_record("latency", machine=describe_machine(trainer.device.type), run_id=run_id, **fields)


# -- subcommands -----------------------------------------------------------------------------------

def run_recipe(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The default recipe (its model, losses, freezing, loader) at ``--image-size`` for a fixed
    number of steps on one device; images/s through its own loader (what training gets)."""
    threads = args.threads or (usable_cores() if args.device == "cpu" else None)
    overrides = recipe_overrides(args.manifest, args.work, f"recipe-{args.device}", args.device, args.image_size,
                                 args.warmup + args.steps, threads=threads, workers=args.workers,
                                 extra=args.override)
    trainer = build_trainer(args.config, overrides)
    try:
        times = time_steps(trainer, args.steps, args.warmup, reuse=None)
        rec = train_record(trainer, times, run_id=args.run_id, measure="recipe_step_with_loader", which="wall",
                           extra={"recipe": str(Path(args.config).name), "dry_run": args.dry_run})
    finally:
        trainer.close()
    return [rec]


def run_sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    """images/s and peak GPU memory per P x K and AMP setting, batches reused (the GPU alone)."""
    records = []
    for pk in args.pk:
        for amp in args.amp:
            name = f"sweep-{pk[0]}x{pk[1]}-{'amp' if amp else 'fp32'}-{args.device}"
            overrides = recipe_overrides(args.manifest, args.work, name, args.device, args.image_size,
                                         args.warmup + args.steps, pk=pk, amp=amp, workers=0,
                                         threads=args.threads, extra=args.override)
            trainer = build_trainer(args.config, overrides)
            try:
                times = time_steps(trainer, args.steps, args.warmup, reuse=args.distinct_batches)
                records.append(train_record(trainer, times, run_id=args.run_id, measure="train_step_reused_batches",
                                            which="compute", extra={"recipe": str(Path(args.config).name),
                                                                    "dry_run": args.dry_run}))
            finally:
                trainer.close()
                del trainer
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            print(json.dumps({k: records[-1][k] for k in ("products_per_batch", "images_per_product", "precision",
                                                          "images_per_s")}), flush=True)
    return records


def run_loader(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The recipe's data loader alone (decode + augmentation + collation), per worker count."""
    from deepproduct.sdk.dataset_manifest import read_dataset_manifest
    from deepproduct.training.data.product_dataset import TrainImages, items_for_split
    from deepproduct.training.data.sampler import PKBatchSampler

    items, _ = items_for_split(read_dataset_manifest(args.manifest), "train")
    dataset = TrainImages(items, args.image_size, augment=True)
    records = []
    for pk in args.pk:
        for workers in args.workers:
            sampler = PKBatchSampler([it.label for it in items], [it.domain for it in items], pk[0], pk[1],
                                     seed=0, batches_per_epoch=args.batches + 1, with_sample_seeds=True)
            loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=False)
            t_start = time.perf_counter()
            it = iter(loader)
            next(it)  # the first batch pays for starting the workers: reported apart
            first = time.perf_counter() - t_start
            samples, last = [], time.perf_counter()
            for x, _, _ in it:
                now = time.perf_counter()
                samples.append(now - last)
                last = now
                batch = int(x.shape[0])
            del it, loader
            stats = summarise([t * 1e3 for t in samples], warmup=1)
            rate = batch * len(samples) / max(sum(samples), 1e-12)
            records.append(make_record(
                "latency", machine=describe_machine("cpu"), run_id=args.run_id,
                artefact=f"loader:{Path(args.manifest).parent.name}", format=LOADER_FORMAT, precision="fp32",
                runtime="torch-dataloader", threads=workers, batch=batch, runs=stats.runs, warmup=1,
                median_ms=stats.median_ms, p90_ms=stats.p90_ms, min_ms=stats.min_ms, mean_ms=stats.mean_ms,
                images_per_s=round(rate, 2), measure="loader_alone", input_size=args.image_size,
                products_per_batch=pk[0], images_per_product=pk[1], loader_workers=workers,
                first_batch_s=round(first, 3), main_process_threads=torch.get_num_threads(),
                dry_run=args.dry_run))
            print(json.dumps({"pk": f"{pk[0]}x{pk[1]}", "workers": workers, "images_per_s": round(rate, 1)}),
                  flush=True)
    return records


def run_skip(args: argparse.Namespace) -> list[dict[str, Any]]:
    """A ``skipped`` record: a step the check could not take here, and why (no CUDA, dry run, time)."""
    return [make_record("skipped", machine=describe_machine("cpu"), run_id=args.run_id, artefact=args.artefact,
                        what=args.what, reason=args.reason)]


# -- summary -----------------------------------------------------------------------------------------

def junit_counts(path: str | Path | None) -> dict[str, int] | None:
    """passed / failed / errors / skipped of a pytest ``--junitxml`` file (None when absent)."""
    if not path or not Path(path).is_file():
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    total["passed"] = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return total


def bound_verdict(step_rate: float, loader_rates: dict[int, float], device: str = "GPU") -> str:
    """GPU- (step-) or loader-bound at each measured worker count: the slower of the two sets the pace."""
    if not loader_rates:
        return "no loader figure"
    parts = [f"{w} workers: {'loader' if r < step_rate else device}-bound" for w, r in sorted(loader_rates.items())]
    return "; ".join(parts)


def summarise_records(records: list[dict[str, Any]], junit: dict[str, int] | None) -> dict[str, Any]:
    """The figures a reader wants first, from one run's records (pure: tested on CPU)."""
    lat = [r for r in records if r["kind"] == "latency"]
    recipe = {r["runtime"]: r for r in lat if r.get("measure") == "recipe_step_with_loader"}
    sweep = [r for r in lat if r.get("measure") == "train_step_reused_batches"]
    loader = [r for r in lat if r.get("measure") == "loader_alone"]
    gpu = next((r["machine"]["gpu"] for r in lat if "gpu" in r["machine"]), None)
    out: dict[str, Any] = {"gpu": gpu, "cuda_tests": junit, "recipe": {}, "sweep": [], "loader": [],
                           "skipped": [{"what": r["what"], "reason": r["reason"]}
                                       for r in records if r["kind"] == "skipped"],
                           "dry_run": any(r.get("dry_run") for r in lat)}
    for runtime, r in sorted(recipe.items()):
        out["recipe"][runtime] = {"images_per_s": r["images_per_s"], "images_per_s_compute": r["images_per_s_compute"],
                                  "batch": r["batch"], "input_size": r["input_size"], "precision": r["precision"],
                                  "threads": r["threads"], "loader_workers": r["loader_workers"], "steps": r["runs"]}
    cpu, cuda = out["recipe"].get("torch-cpu"), out["recipe"].get("torch-cuda")
    if cpu and cuda and cpu["images_per_s"] > 0:
        out["recipe_speedup_gpu_over_cpu"] = round(cuda["images_per_s"] / cpu["images_per_s"], 2)
    for r in loader:
        out["loader"].append({"pk": f"{r['products_per_batch']}x{r['images_per_product']}",
                              "workers": r["loader_workers"], "images_per_s": r["images_per_s"],
                              "input_size": r["input_size"]})
    for r in sweep:
        pk = f"{r['products_per_batch']}x{r['images_per_product']}"
        # The loader's rate per image hardly depends on P x K: another P x K's figure is the fallback.
        same = [row for row in out["loader"] if row["pk"] == pk] or out["loader"]
        rates = {row["workers"]: row["images_per_s"] for row in same}
        out["sweep"].append({"pk": pk, "amp": r["amp"], "precision": r["precision"], "runtime": r["runtime"],
                             "images_per_s": r["images_per_s"], "median_ms": r["median_ms"],
                             "peak_gpu_allocated_mib": r.get("peak_gpu_allocated_mib"),
                             "peak_gpu_reserved_mib": r.get("peak_gpu_reserved_mib"),
                             "bound": bound_verdict(r["images_per_s"], rates,
                                                    "GPU" if r["runtime"] == "torch-cuda" else "CPU")})
    return out


def render_markdown(summary: dict[str, Any]) -> str:
    gpu = summary["gpu"]
    lines = ["# GPU check", ""]
    if summary["dry_run"]:
        lines += ["**Dry run**: the GPU steps were not taken; CPU figures come from tiny settings.", ""]
    lines.append(f"- card: {gpu['name']} ({gpu['memory_mib']:.0f} MiB, CUDA {gpu['cuda']}, torch {gpu['torch']})"
                 if gpu else "- card: none (no CUDA device was visible)")
    tests = summary["cuda_tests"]
    lines.append("- `pytest -m gpu`: " + (f"{tests['passed']} passed, {tests['failures']} failed, "
                                          f"{tests['errors']} errors, {tests['skipped']} skipped"
                                          if tests else "no result file"))
    if "recipe_speedup_gpu_over_cpu" in summary:
        lines.append(f"- default recipe, GPU over CPU: {summary['recipe_speedup_gpu_over_cpu']}x images/s")
    lines.append("")
    if summary["recipe"]:
        lines += ["## Default recipe (configs/demo.yaml), its own loader", "",
                  "| runtime | images/s | images/s, step alone | batch | px | precision | threads | workers | steps |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for runtime, r in summary["recipe"].items():
            lines.append(f"| {runtime} | {r['images_per_s']:.1f} | {r['images_per_s_compute']:.1f} | {r['batch']} | "
                         f"{r['input_size']} | {r['precision']} | {r['threads']} | {r['loader_workers']} | {r['steps']} |")
        lines.append("")
    if summary["sweep"]:
        lines += ["## Training step alone (batches reused)", "",
                  "| P x K | precision | runtime | images/s | median ms | peak allocated MiB | peak reserved MiB | bound |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in summary["sweep"]:
            lines.append(f"| {r['pk']} | {r['precision']} | {r['runtime']} | {r['images_per_s']:.1f} | "
                         f"{r['median_ms']:.1f} | {_fmt(r['peak_gpu_allocated_mib'])} | "
                         f"{_fmt(r['peak_gpu_reserved_mib'])} | {r['bound']} |")
        lines.append("")
    if summary["loader"]:
        lines += ["## Data loader alone", "", "| P x K | workers | images/s | px |", "|---|---|---|---|"]
        for r in summary["loader"]:
            lines.append(f"| {r['pk']} | {r['workers']} | {r['images_per_s']:.1f} | {r['input_size']} |")
        lines.append("")
    if summary["skipped"]:
        lines += ["## Not measured", ""] + [f"- {s['what']}: {s['reason']}" for s in summary["skipped"]] + [""]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f}"


def run_summary(args: argparse.Namespace) -> None:
    records = list(read_records([args.records])) if Path(args.records).is_file() else []
    summary = summarise_records(records, junit_counts(args.junit))
    Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    Path(args.md_out).write_text(render_markdown(summary), encoding="utf-8")
    print(render_markdown(summary))


# -- command line --------------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser, needs_data: bool = True) -> None:
    p.add_argument("--out", required=True, help="JSON-lines file the records are appended to.")
    p.add_argument("--run-id", default=os.environ.get("DP_GPU_CHECK_RUN_ID") or new_run_id())
    p.add_argument("--dry-run", action="store_true", help="Mark the records as a dry run (tiny CPU settings).")
    if needs_data:
        p.add_argument("--manifest", required=True, help="Dataset manifest (dp-data synth output).")
        p.add_argument("--image-size", type=int, default=224)


def _trainer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", required=True, help="Scratch folder for the trainer's run directories.")
    p.add_argument("--config", default=str(DEFAULT_RECIPE), help="The recipe (default: configs/demo.yaml).")
    p.add_argument("--device", choices=("cpu", "cuda"), required=True)
    p.add_argument("--steps", type=int, default=10, help="Timed steps.")
    p.add_argument("--warmup", type=int, default=3, help="Untimed steps first (cuDNN autotuning, allocator).")
    p.add_argument("--threads", type=int, default=None, help="torch threads (recipe on CPU: all usable cores).")
    p.add_argument("--override", action="append", default=[], help="Extra key=value for the recipe (repeatable).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu.throughput", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("recipe", help="The default recipe for a fixed number of steps, loader included.")
    _common(p)
    _trainer_args(p)
    p.add_argument("--workers", type=int, default=None, help="Loader workers (default: the recipe's).")
    p = sub.add_parser("sweep", help="Training step alone per P x K and AMP setting, peak GPU memory.")
    _common(p)
    _trainer_args(p)
    p.add_argument("--pk", type=lambda s: [parse_pk(x) for x in parse_list(s)], default=[(16, 4), (32, 4)])
    p.add_argument("--amp", type=lambda s: [parse_switch(x) for x in parse_list(s)], default=[True, False])
    p.add_argument("--distinct-batches", type=int, default=2, help="Batches taken from the loader and reused.")
    p = sub.add_parser("loader", help="The data loader's rate alone, per worker count.")
    _common(p)
    p.add_argument("--pk", type=lambda s: [parse_pk(x) for x in parse_list(s)], default=[(32, 4)])
    p.add_argument("--workers", type=lambda s: parse_list(s, int), default=[1, 8])
    p.add_argument("--batches", type=int, default=8, help="Timed batches per worker count (after the first).")
    p = sub.add_parser("skip", help="Record a step that was not taken, and why.")
    _common(p, needs_data=False)
    p.add_argument("--artefact", default="gpu-check")
    p.add_argument("--what", required=True)
    p.add_argument("--reason", required=True)
    p = sub.add_parser("summary", help="summary.md and summary.json from the records and pytest's junit file.")
    p.add_argument("--records", required=True)
    p.add_argument("--junit", default=None)
    p.add_argument("--md-out", required=True)
    p.add_argument("--json-out", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "summary":
        run_summary(args)
        return 0
    if getattr(args, "device", None) == "cuda" and not torch.cuda.is_available():
        print("throughput: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 3
    runner = {"recipe": run_recipe, "sweep": run_sweep, "loader": run_loader, "skip": run_skip}[args.command]
    records = runner(args)
    write_records(args.out, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
