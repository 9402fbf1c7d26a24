r"""WiSE-FT: weight-space ensembling of the fine-tuned and the pretrained network (Wortsman et al.
2022, "Robust fine-tuning of zero-shot models"), as an optional step after ``dp-train``.

    theta(alpha) = (1 - alpha) * theta_pretrained + alpha * theta_finetuned

for every backbone tensor (``features.*``, and the kept ImageNet ``classifier.*``). Fine-tuning on
our procedural products moves the backbone towards invariances that transfer and away from what
ImageNet taught it; intermediate alphas often keep more of both than either endpoint (the paper's
finding for CLIP; for us an empirical question, answered on the real-image transfer set). alpha = 0
is the pretrained backbone, alpha = 1 the fine-tuned one, both exactly.

The linear head has no pretrained counterpart (the pretrained network has none), so it is either
kept from the fine-tuned checkpoint (``head="keep"``) or refitted as the PCA of the mixed
backbone's pooled features on the training images (``head="pca"``, see models/projection.py),
which is what the default recipe ships. The result is an ordinary checkpoint: dp-export, dp-search
and ``dp-train --eval-only --checkpoint`` take it unchanged.

CLI: ``python -m deepproduct.training.wise_ft RUN/checkpoints/last.safetensors --alpha 0.5 --out X``
or ``--choose-on TRANSFER_MANIFEST --alphas 0,0.25,0.5,0.75,1`` (keeps the best Recall@1 there).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch

from .checkpoint import CheckpointError, load_model, model_config_of, save_checkpoint
from .models import EmbeddingNet, build_embedding_net

MIXED_PREFIXES = ("features.", "classifier.")
HEAD_MODES = ("keep", "pca", "pca_whiten")


def interpolate_state(pretrained: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * pretrained + alpha * finetuned`` on backbone float tensors; everything else
    (the head, integer buffers such as BatchNorm's step counters) comes from ``finetuned``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WiSE-FT alpha must be in [0, 1], got {alpha}")
    out = {}
    for name, ft in finetuned.items():
        pre = pretrained.get(name)
        if name.startswith(MIXED_PREFIXES) and pre is not None and ft.is_floating_point():
            if pre.shape != ft.shape:
                raise ValueError(f"cannot mix {name}: pretrained {tuple(pre.shape)} vs fine-tuned {tuple(ft.shape)}")
            # Written out (not lerp) so that alpha 0 and 1 give the endpoints bit for bit.
            out[name] = (1.0 - alpha) * pre.to(ft) + alpha * ft
        else:
            out[name] = ft.clone()
    return out


def pretrained_twin(model: EmbeddingNet, cfg: dict[str, Any]) -> EmbeddingNet:
    """The same architecture with the backbone's shipped pretrained weights."""
    source = cfg.get("pretrained_source")
    if not source:
        raise CheckpointError(f"WiSE-FT needs a fine-tuned *pretrained* backbone; this checkpoint's "
                              f"{cfg.get('backbone')} started from random weights")
    if cfg.get("architecture", "embedding_net") != "embedding_net":
        raise CheckpointError(f"WiSE-FT supports the plain embedding net, not {cfg['architecture']!r}")
    pretrained: bool | str = source if isinstance(source, str) and Path(source).is_file() else True
    return build_embedding_net(cfg["backbone"], int(cfg["embedding_dim"]), cfg.get("pooling", "avg"),
                               pretrained=pretrained)


@dataclass
class WiseFT:
    """The two endpoints, loaded once; :meth:`at` builds the mixed model for any alpha."""

    finetuned: EmbeddingNet
    pretrained: EmbeddingNet
    config: dict[str, Any]

    @classmethod
    def load(cls, checkpoint: str | Path) -> WiseFT:
        model, cfg = load_model(checkpoint)
        return cls(model, pretrained_twin(model, cfg).eval(), cfg)

    def at(self, alpha: float) -> EmbeddingNet:
        mixed = interpolate_state(self.pretrained.state_dict(), self.finetuned.state_dict(), alpha)
        model = build_embedding_net(self.config["backbone"], int(self.config["embedding_dim"]),
                                    self.config.get("pooling", "avg"), pretrained=False,
                                    normalise_pooled=bool(self.config.get("normalise_pooled", False)))
        model.load_state_dict(mixed)
        model.input_size = int(self.config.get("input_size") or model.input_size)
        model.extra_config = {**model.extra_config, "wise_ft_alpha": float(alpha)}
        return model.eval()


def refit_head(model: EmbeddingNet, train_manifest: str | Path, kind: str, image_size: int,
               whiten_power: float = 0.0) -> dict[str, Any]:
    """PCA (or whitening) head on the mixed backbone's pooled features of the training images."""
    from deepproduct.sdk.dataset_manifest import read_dataset_manifest

    from .data.product_dataset import DataError, EvalImages, items_for_split
    from .models.projection import fit_head

    items, _ = items_for_split(read_dataset_manifest(train_manifest), "train")
    if not items:
        raise DataError(f"{train_manifest}: no rows with split=train to fit the head on")
    projection = fit_head(model, EvalImages(items, image_size), torch.device("cpu"), kind,
                          whiten_power=whiten_power)
    return {"kind": kind, "images": projection.samples, "explained_variance": projection.explained,
            "whiten_power": whiten_power, "normalise_pooled": model.normalise_pooled}


def score(model: EmbeddingNet, manifest: str | Path, image_size: int, split: str = "test") -> dict[str, Any]:
    from deepproduct.sdk.dataset_manifest import read_dataset_manifest

    from .eval.held_out import evaluate_retrieval

    return evaluate_retrieval(model, read_dataset_manifest(manifest), image_size, torch.device("cpu"),
                              split=split, progress=False)


def _alphas(text: str) -> list[float]:
    try:
        values = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise click.BadParameter(f"--alphas must be comma-separated numbers, got {text!r}") from None
    if not values or any(not 0 <= a <= 1 for a in values):
        raise click.BadParameter(f"--alphas must lie in [0, 1], got {text!r}")
    return values


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint to write (e.g. RUN/checkpoints/wise.safetensors).")
@click.option("--alpha", type=float, default=None, help="Mixing weight of the fine-tuned network, 0..1.")
@click.option("--choose-on", type=click.Path(dir_okay=False), default=None,
              help="Manifest (its test split) to choose alpha on by Recall@1, e.g. the transfer set.")
@click.option("--alphas", default="0,0.25,0.5,0.75,1", show_default=True, help="Candidates for --choose-on.")
@click.option("--head", "head", type=click.Choice(HEAD_MODES), default="keep", show_default=True,
              help="keep the fine-tuned head, or refit it as PCA of the mixed backbone (needs --train-manifest).")
@click.option("--train-manifest", type=click.Path(dir_okay=False), default=None,
              help="Training manifest whose split=train images the PCA head is fitted on.")
@click.option("--whiten-power", type=float, default=0.0, show_default=True,
              help="With --head pca: divide each axis by std ** power (0.5: the default recipe's).")
@click.option("--normalise-pooled/--keep-pooled", default=None,
              help="L2-normalise pooled features before the head (default: as the checkpoint does).")
def main(checkpoint: str, out: str, alpha: float | None, choose_on: str | None, alphas: str, head: str,
         train_manifest: str | None, whiten_power: float, normalise_pooled: bool | None) -> None:
    """Mix a fine-tuned checkpoint with its pretrained backbone (WiSE-FT) and save the result."""
    from .data.product_dataset import DataError

    try:
        if (alpha is None) == (choose_on is None):
            raise click.UsageError("give exactly one of --alpha or --choose-on")
        if head != "keep" and not train_manifest:
            raise click.UsageError(f"--head {head} needs --train-manifest")
        wise = WiseFT.load(checkpoint)
        if normalise_pooled is not None:
            if head == "keep" and normalise_pooled != bool(wise.config.get("normalise_pooled", False)):
                raise click.UsageError("--normalise-pooled changes what the head sees: refit it (--head pca)")
            wise.config["normalise_pooled"] = normalise_pooled
        size = int(wise.config.get("input_size") or wise.finetuned.input_size)
        candidates = [alpha] if alpha is not None else _alphas(alphas)
        results, best = [], None
        for a in candidates:
            model = wise.at(a)
            head_log = (refit_head(model, train_manifest, head, size, whiten_power) if head != "keep"
                        else {"kind": "keep"})
            row: dict[str, Any] = {"alpha": a, "head": head_log}
            if choose_on:
                metrics = score(model, choose_on, size)
                row.update({k: metrics[k] for k in ("recall@1", "recall@5", "map@r", "queries")})
                click.echo(json.dumps(row), err=True)
            results.append(row)
            if best is None or choose_on and row["recall@1"] > best[0]["recall@1"]:
                best = (row, model)
        row, model = best
        cfg = model_config_of(model)
        save_checkpoint(out, model, model_config=cfg, trainer_state={
            "wise_ft": {"source": str(checkpoint), "chosen": row, "candidates": results,
                        "chosen_on": choose_on}})
        click.echo(json.dumps({"out": out, "alpha": row["alpha"], "candidates": results}, indent=2))
    except (CheckpointError, DataError, ValueError) as exc:
        click.echo(f"wise-ft: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
