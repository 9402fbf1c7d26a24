"""The recipe ablation: every training recipe on the same data, seed and step budget.

    python -m deepproduct.training.ablation --config configs/ablation.yaml --out runs/ablation

trains each recipe of the ablation config (off-the-shelf features, classical contrastive, robust
contrastive, robust contrastive + multitask, SGML, LRML, tag attention, DAML; each a
``configs/recipes/*.yaml`` dp-train config) with the config's ``common`` overrides applied on top,
so data, seed, image size, P x K and the number of steps are the same for all, then writes

* ``OUT/results.md``: the Markdown table (Recall@1/5/10, MAP@R, training time) with the command,
  seed, budget and data, ready for the README;
* ``OUT/results.json``: the same rows with every metric;
* ``OUT/ablation.png``: a grouped bar plot (matplotlib).

Data: ``OUT/data/manifest.csv``; when it is missing, the embedded benchmark is generated there
(the same as ``dp-data synth --out OUT/data --products N --seed S``). Each recipe's run folder
(``OUT/runs/NAME``) keeps its log, checkpoint and an ``ablation_result.json``; a rerun reuses a
finished recipe whose effective config is unchanged (``--force`` retrains), so an interrupted
ablation continues where it stopped.

With a transfer set (``--transfer CSV`` or the config's ``transfer:`` key; a ``dp-data transfer``
manifest, docs/transfer-benchmark.md) every recipe is also scored on it, with its embedding and
with its pooled backbone features, and the table gets those two columns.

This module runs the recipes; ``training/ablation_report.py`` turns the rows into the table, the
plot and the results files.

Besides the trained recipes, the tag-attention model is also scored with a *tagged* gallery (the
index built server-side with the tag branch) and, optionally, with the CtxYNet re-ranker of the
top-K (:mod:`deepproduct.training.models.ctx_rerank`); these are extra rows under it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from deepproduct.sdk.output_policy import check_folder_output, write_marker

from .ablation_report import METRICS, TRANSFER_METRICS, budget_text, markdown_table, write_results
from .config import ConfigError, TrainConfig, load_config, load_yaml_text

RECIPE_KEYS = ("name", "label", "config", "overrides", "eval_only", "off_the_shelf", "tagged_gallery",
               "ctx_rerank")
TOP_KEYS = ("seed", "products", "baseline", "common", "recipes", "transfer")


@dataclass
class Recipe:
    name: str
    label: str
    config: str  # a dp-train YAML, relative to the ablation config's folder
    overrides: dict[str, Any] = field(default_factory=dict)
    eval_only: bool = False
    off_the_shelf: bool = False
    tagged_gallery: bool = False  # tag attention: also score a gallery embedded with its tags
    ctx_rerank: dict[str, Any] | None = None  # fit + score the CtxYNet re-ranker on this model


@dataclass
class AblationSpec:
    path: Path
    seed: int
    products: int
    baseline: str
    common: dict[str, Any]
    recipes: list[Recipe]
    transfer: str | None = None  # a transfer-set manifest scored beside the held-out split


def load_ablation(path: str | Path) -> AblationSpec:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"ablation config not found: {path}")
    raw = load_yaml_text(path.read_text(encoding="utf-8"), str(path)) or {}
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}; allowed: {', '.join(TOP_KEYS)}")
    recipes = []
    for i, item in enumerate(raw.get("recipes") or []):
        unknown = set(item) - set(RECIPE_KEYS)
        if unknown:
            raise ConfigError(f"{path}: recipes.{i}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(RECIPE_KEYS)}")
        if "name" not in item or "config" not in item:
            raise ConfigError(f"{path}: recipes.{i} needs a name and a config")
        recipes.append(Recipe(**{"label": item["name"], **item}))
    if not recipes:
        raise ConfigError(f"{path}: no recipes")
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: recipe names must be unique")
    spec = AblationSpec(path=path, seed=int(raw.get("seed", 0)), products=int(raw.get("products", 400)),
                        baseline=str(raw.get("baseline", "robust_contrastive")), common=dict(raw.get("common") or {}),
                        recipes=recipes, transfer=raw.get("transfer"))
    if spec.baseline not in names:
        raise ConfigError(f"{path}: baseline {spec.baseline!r} is not one of the recipes ({', '.join(names)})")
    return spec


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"  # JSON is YAML: the config loader parses it back


def recipe_config(spec: AblationSpec, recipe: Recipe, manifest: Path, runs: Path) -> TrainConfig:
    config = spec.path.parent / recipe.config
    overrides = [_override(k, v) for k, v in {**spec.common, **recipe.overrides}.items()]
    overrides += [_override("data.manifest", str(manifest)), _override("out_dir", str(runs)),
                  _override("name", recipe.name), _override("seed", spec.seed)]
    if spec.transfer:
        overrides.append(_override("eval.transfer_manifest", str(spec.transfer)))
    return load_config(config, overrides)


def ensure_data(data_dir: Path, products: int, seed: int, say: Any = print) -> Path:
    """The benchmark's manifest; generated (``dp-data synth`` equivalent) when missing."""
    manifest = data_dir / "manifest.csv"
    if manifest.is_file():
        return manifest
    from .data.synth import generate_synthetic_dataset

    say(f"generating the embedded benchmark: {products} products, seed {seed} -> {data_dir}")
    return generate_synthetic_dataset(data_dir, n_products=products, seed=seed, workers=max(1, min(2, os.cpu_count() or 1)))


def _fingerprint(cfg: TrainConfig, recipe: Recipe) -> str:
    blob = json.dumps({"config": cfg.to_dict(), "recipe": asdict(recipe)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- extra scorings of a trained model -------------------------------------------------------------

@torch.no_grad()
def tagged_gallery_metrics(model: Any, manifest: Any, image_size: int, device: torch.device,
                           batch_size: int = 64) -> dict[str, float]:
    """Consumer-to-shop metrics with queries through the phone model (tag-free) and the gallery
    embedded server-side with its catalogue tags (``TagAttentionNet.embed_catalogue``)."""
    from torch.utils.data import DataLoader

    from .data.product_dataset import EvalImages, items_for_split
    from .eval.held_out import RECALL_KS
    from .eval.metrics import map_at_r, recall_at_k

    model.eval()
    items, _ = items_for_split(manifest, "test")
    loader = DataLoader(EvalImages(items, image_size), batch_size=batch_size, shuffle=False, num_workers=0)
    out, start = [], 0
    for x, _, _ in loader:
        batch_items = items[start:start + len(x)]
        start += len(x)
        tags = [list(it.row.tags) if it.domain == 0 else [] for it in batch_items]
        out.append(model.embed_catalogue(x.to(device), tags).float().cpu().numpy())
    emb = np.concatenate(out)
    labels = np.array([it.label for it in items])
    domains = np.array([it.domain for it in items])
    q, g = domains == 1, domains == 0
    metrics = recall_at_k(emb[q], labels[q], emb[g], labels[g], RECALL_KS)
    metrics.update(map_at_r(emb[q], labels[q], emb[g], labels[g]))
    return metrics


def ctx_rerank_rows(model: Any, manifest: Any, image_size: int, device: torch.device, options: dict,
                    seed: int) -> tuple[dict[str, float], dict[str, float], float]:
    """Fit the CtxYNet re-ranker on the training split, score the test split; (index, re-ranked, s)."""
    from .models.ctx_rerank import CtxReranker, cache_split, fit_ctx_reranker, rerank_metrics

    t0 = time.perf_counter()
    reranker = CtxReranker(model, hidden=int(options.get("hidden", 128)), mix=float(options.get("mix", 0.5))).to(device)
    train = cache_split(reranker, manifest, "train", image_size, device)
    fit_ctx_reranker(reranker, train, steps=int(options.get("steps", 300)), lr=float(options.get("lr", 1e-3)),
                     seed=seed, device=device)
    del train
    test = cache_split(reranker, manifest, "test", image_size, device)
    scores = rerank_metrics(reranker, test, top_k=int(options.get("top_k", 20)), device=device)
    return scores["index"], scores["reranked"], time.perf_counter() - t0


# -- one recipe ------------------------------------------------------------------------------------

def cached_rows(spec: AblationSpec, recipe: Recipe, manifest: Path, runs: Path) -> list[dict[str, Any]] | None:
    """The rows of an earlier run of this recipe with the same effective config, if any."""
    result_file = runs / recipe.name / "ablation_result.json"
    if not result_file.is_file():
        return None
    cached = json.loads(result_file.read_text(encoding="utf-8"))
    fingerprint = _fingerprint(recipe_config(spec, recipe, manifest, runs), recipe)
    return cached["rows"] if cached.get("fingerprint") == fingerprint else None


def run_recipe(spec: AblationSpec, recipe: Recipe, manifest: Path, runs: Path, force: bool = False,
               progress: bool = False, say: Any = print) -> list[dict[str, Any]]:
    """Train (or only evaluate) one recipe; returns its table rows (the recipe's, then extras)."""
    from .trainer import Trainer

    cfg = recipe_config(spec, recipe, manifest, runs)
    fingerprint = _fingerprint(cfg, recipe)
    result_file = runs / recipe.name / "ablation_result.json"
    cached = None if force else cached_rows(spec, recipe, manifest, runs)
    if cached is not None:
        say(f"[{recipe.name}] finished before with this config: reusing {result_file}")
        return cached
    say(f"[{recipe.name}] {'evaluating' if recipe.eval_only else 'training'}: {recipe.label}")
    t0 = time.perf_counter()
    load_start = _load()
    trainer = Trainer(cfg, progress=progress)
    try:
        row: dict[str, Any] = {"name": recipe.name, "label": recipe.label, "config": recipe.config,
                               "multitask": trainer.multitask if not recipe.eval_only else "-"}
        if recipe.eval_only:
            metrics = trainer.evaluate(off_the_shelf=recipe.off_the_shelf)
            row.update(steps=0, train_seconds=0.0)
        else:
            result = trainer.train()
            metrics = result.final_metrics
            summary = json.loads((trainer.out_dir / "summary.json").read_text(encoding="utf-8"))
            row.update(steps=summary["steps"], train_seconds=round(summary["train_seconds"], 1),
                       images_per_s=round(summary["images_per_s"], 2))
        row.update({k: metrics[k] for k in (*METRICS, "recall@20", "queries", "gallery", *TRANSFER_METRICS,
                                            "transfer/queries") if k in metrics})
        row["wall_seconds"] = round(time.perf_counter() - t0, 1)
        # other processes on a shared machine slow every timing down: keep the context with them
        row["load_average"] = [load_start, _load()]
        rows = [row]
        if recipe.tagged_gallery:
            say(f"[{recipe.name}] scoring with a tagged gallery (server-side index with the tag branch)")
            tagged = tagged_gallery_metrics(trainer.model, trainer.manifest, cfg.data.image_size, trainer.device,
                                            cfg.data.eval_batch_size)
            rows.append({"name": f"{recipe.name}+tagged_gallery", "label": "  ↳ same model, gallery embedded "
                         "with its tags (server index)", "extra": True, **{k: tagged[k] for k in METRICS}})
        if recipe.ctx_rerank:
            say(f"[{recipe.name}] fitting + scoring the CtxYNet re-ranker (top-{recipe.ctx_rerank.get('top_k', 20)})")
            _, reranked, seconds = ctx_rerank_rows(trainer.model, trainer.manifest, cfg.data.image_size,
                                                   trainer.device, recipe.ctx_rerank, spec.seed)
            rows.append({"name": f"{recipe.name}+ctx_rerank", "label": f"  ↳ + CtxYNet re-rank of the top-"
                         f"{recipe.ctx_rerank.get('top_k', 20)} (server)", "extra": True,
                         "train_seconds": round(seconds, 1), **reranked})
    finally:
        trainer.close()
        del trainer
        gc.collect()
    rows[0]["recipe_wall_seconds"] = round(time.perf_counter() - t0, 1)  # with the extra scorings
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps({"fingerprint": fingerprint, "rows": rows}, indent=2), encoding="utf-8")
    say(f"[{recipe.name}] " + ", ".join(f"{k} {rows[0][k]:.4f}" for k in METRICS if k in rows[0])
        + f"  ({rows[0]['wall_seconds']:.0f} s)")
    return rows


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def run_ablation(config: str | Path, out: str | Path, only: list[str] | None = None, force: bool = False,
                 progress: bool = False, say: Any = print, data: str | Path | None = None,
                 transfer: str | Path | None = None, seed: int | None = None) -> list[dict[str, Any]]:
    """Run the ablation; ``data`` = an existing dataset manifest instead of ``OUT/data``;
    ``transfer`` = a transfer-set manifest (overrides the config's ``transfer:``); ``seed`` = the
    training seed (overrides the config's ``seed:``; generated data keeps the config's seed, so the
    seeds of a multi-seed comparison train on the same data)."""
    spec = load_ablation(config)
    data_seed = spec.seed
    if transfer is not None:
        spec.transfer = str(transfer)
    if seed is not None:
        spec.seed = seed
    out = Path(out)
    runs = out / "runs"
    manifest = Path(data) if data else ensure_data(out / "data", spec.products, data_seed, say)
    if only:
        missing = sorted(set(only) - {r.name for r in spec.recipes})
        if missing:
            raise ConfigError(f"--only: unknown recipe(s) {', '.join(missing)}; "
                              f"known: {', '.join(r.name for r in spec.recipes)}")
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for recipe in spec.recipes:
        if not only or recipe.name in only:
            rows += run_recipe(spec, recipe, manifest, runs, force=force, progress=progress, say=say)
        else:  # --only: the other recipes enter the table when an earlier run of theirs is there
            rows += cached_rows(spec, recipe, manifest, runs) or []
    total = time.perf_counter() - t0
    recipes_total = sum(r.get("recipe_wall_seconds", r.get("wall_seconds", 0.0)) for r in rows if not r.get("extra"))
    ref_cfg = recipe_config(spec, next(r for r in spec.recipes if r.name == spec.baseline), manifest, runs)
    command = "python -m deepproduct.training.ablation --config " + str(config) + " --out " + str(out)
    if data:
        command += f" --data {data}"
    if transfer:
        command += f" --transfer {transfer}"
    if seed is not None:
        command += f" --seed {seed}"
    partial = (f" This invocation (re)ran {', '.join(only)} (`--only`); the other rows come from earlier "
               "runs with the same effective config." if only else "")
    from deepproduct.sdk.dataset_manifest import read_dataset_manifest

    m = read_dataset_manifest(manifest)
    test_rows = m.select(split="test")
    meta = {"command": command, "seed": spec.seed, "budget": budget_text(ref_cfg, torch.get_num_threads()),
            "data": (f"{manifest}: " if data else f"embedded benchmark (`dp-data synth --out {out / 'data'} "
                     f"--products {spec.products} --seed {data_seed}`): ") + (f"{len(m.products('train'))} training products, "
                     f"{sum(r.domain == 'user' for r in test_rows)} test phone-photo queries against "
                     f"{sum(r.domain == 'shop' for r in test_rows)} shop images of "
                     f"{len(m.products('test'))} test + distractor products"),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
            "wall_seconds_this_invocation": round(total, 1), "wall_seconds_all_recipes": round(recipes_total, 1)}
    if spec.transfer:
        t_rows = read_dataset_manifest(spec.transfer).rows
        meta["transfer"] = (f"`{spec.transfer}` ({sum(r.domain == 'user' for r in t_rows)} phone-style queries "
                            f"against {sum(r.domain == 'shop' for r in t_rows)} shop images)")
    title = f"Recipe ablation, seed {spec.seed}, {ref_cfg.optim.epochs * (ref_cfg.optim.steps_per_epoch or 0)} steps each"
    write_results(out, rows, meta, spec.baseline, title, partial, recipes_total, total)
    say(markdown_table(rows, spec.baseline))
    say(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'ablation.png'} ({total / 60:.1f} min)")
    return rows


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", default="configs/ablation.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Ablation config (recipes + common overrides).")
@click.option("--out", default="runs/ablation", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: data/, runs/, results.md, results.json, ablation.png.")
@click.option("--only", default=None, help="Comma-separated recipe names (default: all).")
@click.option("--data", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Use this dataset manifest instead of OUT/data (generated when missing).")
@click.option("--transfer", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Also score every recipe on this transfer set (dp-data transfer manifest).")
@click.option("--seed", default=None, type=click.IntRange(0, 2**31 - 1),
              help="Training seed (default: the config's); generated data keeps the config's seed.")
@click.option("--force", is_flag=True, help="Retrain recipes that finished before with the same config.")
@click.option("--progress", is_flag=True, help="Show the trainer's progress bars.")
def main(config: str, out: str, only: str | None, data: str | None, transfer: str | None, seed: int | None,
         force: bool, progress: bool) -> None:
    """Train every recipe on the same data, seed and step budget; write a table and a bar plot."""
    from .checkpoint import CheckpointError
    from .data.product_dataset import DataError

    # The output policy: OUT is missing, empty, or an ablation folder of ours (reruns reuse it)
    check_folder_output(Path(out), [config, data, transfer], overwrite=True, what="--out folder",
                        kind="ablation-folder")
    Path(out).mkdir(parents=True, exist_ok=True)
    write_marker(Path(out), "dp-bench ablation", "ablation-folder")
    try:
        run_ablation(config, out, only=[s for s in only.split(",") if s] if only else None, force=force,
                     progress=progress, say=lambda m: click.echo(m, err=True), data=data, transfer=transfer,
                     seed=seed)
    except (ConfigError, DataError, CheckpointError, KeyError, ValueError) as exc:
        click.echo(f"dp-bench ablation: error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}",
                   err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
