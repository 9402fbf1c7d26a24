"""The training loop: P x K batches, weighted metric losses, ImageNet multitask regularisation,
AdamW with warm-up and cosine decay, per-epoch evaluation, JSONL log, atomic checkpoints, resume.

Determinism: every epoch reseeds torch, the sampler and the loader from (seed, epoch), so a run
stopped after epoch e and resumed equals the uninterrupted run (checkpoints are per epoch).

Hooks for the seed-alternative methods (docs/method.md section 4), declared with no-op defaults,
so the plain recipe uses none:
- every loss is a :class:`.losses.base.MetricLoss`: ``required_columns``, ``bind_manifest``,
  ``bind_model``, ``trains_own_parameters``, ``set_epoch``, ``updates_model`` and ``last`` are
  documented there; weights inside losses are checkpointed beside the model
  (``NAME.losses.safetensors``);
- a model with ``uses_batch_context = True`` (declared False on :class:`.models.EmbeddingNet`) gets
  ``forward_train(x, labels=..., domains=...)`` (tag attention looks up the shop images' product tags).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from deepproduct.sdk.dataset_manifest import read_dataset_manifest

from .checkpoint import (
    check_same_shape,
    load_loss_state,
    load_model,
    load_trainer_state,
    model_config_of,
    save_checkpoint,
    save_loss_state,
)
from .config import ConfigError, TrainConfig, save_config
from .data.product_dataset import DataError, EvalImages, TrainImages, check_images_exist, items_for_split
from .data.sampler import PKBatchSampler
from .distributed import DistInfo, barrier, init_distributed, shutdown
from .eval.held_out import evaluate_retrieval
from .eval.transfer import TransferEval
from .losses import create_loss
from .losses.multitask import distillation, imagenet_ce, make_frozen_teacher, resolve_variant
from .models import EmbeddingNet, get_architecture
from .models.pooling import l2_normalise
from .models.projection import (
    HEAD_INITS,
    PROJECTIONS,
    fit_head,
    head_spectrum,
    orthogonality_penalty,
)
from .progress import progress_bar


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} requested but CUDA is not available")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device={name}: not a device torch knows ({exc})") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device={name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def reproducibility_facts(cfg: TrainConfig) -> dict[str, Any]:
    """What a rerun on another machine must match to reproduce the run (docs/reproducibility.md)."""
    return {"interop_threads": torch.get_num_interop_threads(), "data_workers": cfg.data.workers,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class TrainForward(nn.Module):
    """Wraps ``forward_train`` as ``forward`` so DistributedDataParallel sees the call."""

    def __init__(self, model: EmbeddingNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                domains: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        if labels is not None and self.model.uses_batch_context:
            out = self.model.forward_train(x, labels=labels, domains=domains)
        else:
            out = self.model.forward_train(x)
        return out.embedding, out.logits, out.pooled


def build_model(cfg: TrainConfig) -> EmbeddingNet:
    """The registered ``model.architecture`` (models/registry.py), built from the config."""
    return get_architecture(cfg.model.architecture, ConfigError).build(cfg)


def resolve_multitask(cfg: TrainConfig, model: EmbeddingNet) -> str:
    try:
        variant = resolve_variant(cfg.multitask.variant, cfg.data.imagenet_folder)
    except ValueError as exc:
        raise ConfigError(f"multitask.variant: {exc}") from None
    if variant != "none" and model.classifier is None:
        raise ConfigError(f"backbone {cfg.model.backbone} has no ImageNet classifier for the multitask branch")
    if variant == "distillation" and model.pretrained_source is None:
        # Distilling towards a random network would regularise towards noise.
        raise ConfigError("multitask.variant=distillation needs a pretrained backbone "
                          f"({cfg.model.backbone} has no pretrained weights); use multitask.variant=none")
    return variant


@dataclass
class TrainResult:
    out_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    images_per_s: float = 0.0
    multitask_variant: str = "none"


class Trainer:
    def __init__(self, cfg: TrainConfig, progress: bool = True, eval_only: bool = False) -> None:
        """``eval_only``: build just the model and the test split (no losses, sampler or optimiser),
        so a manifest with no training rows -- a test-only transfer set -- can be scored."""
        self.cfg = cfg
        self.eval_only = eval_only
        self.progress = progress
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # Same config + seed -> same run (docs/reproducibility.md): deterministic kernels where
        # torch has them; the augmentation is seeded per sample by the sampler, not per worker.
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.out_dir = Path(cfg.out_dir) / cfg.name
        self.manifest = read_dataset_manifest(cfg.data.manifest)
        self.train_items, self.train_products = items_for_split(self.manifest, "train")
        test_items, _ = items_for_split(self.manifest, "test")
        if eval_only and not test_items:
            raise DataError(f"{cfg.data.manifest}: no rows with split=test to evaluate")
        if not self.train_items and not eval_only:
            raise DataError(f"{cfg.data.manifest}: no rows with split=train")
        check_images_exist(self.train_items, self.manifest)
        check_images_exist(test_items, self.manifest)
        # The real-image transfer set, scored beside the held-out split (training/eval/transfer.py).
        # Every evaluation, the PCA head and the shipped model use the ship size (FixRes; by
        # default the training size): the figures logged are the shipped model's.
        self.eval_size = cfg.data.ship_size or cfg.data.image_size
        self.transfer = (TransferEval(cfg.eval.transfer_manifest, self.eval_size, self.manifest,
                                      cfg.eval.transfer_max_products, cfg.seed)
                         if cfg.eval.transfer_manifest else None)

        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg).to(self.device)
        self.model.freeze_stages(cfg.model.freeze_stages)
        self.model.input_size = self.eval_size  # the checkpoint records the size it ships at ...
        if self.eval_size != cfg.data.image_size:  # ... and, for FixRes, the size it was trained at
            self.model.extra_config = {**self.model.extra_config, "trained_input_size": cfg.data.image_size}
        self._eval_set: EvalImages | None = None
        self.start_epoch, self.step, self.history = 0, 0, []
        if eval_only:  # evaluation needs the model only
            self.multitask, self.losses = "none", []
            return
        self.multitask = resolve_multitask(cfg, self.model)
        if self.multitask == "none" and self.model.classifier is not None:
            for p in self.model.classifier.parameters():
                p.requires_grad_(False)
        self.teacher = None
        if self.multitask == "distillation":
            self.teacher = make_frozen_teacher(self.model)
        self.head_log: dict[str, Any] = {}
        self._check_head_config()
        if cfg.head.init == "pca":
            self.head_log["init"] = self._fit_head("pca", cfg.data.image_size)
        self.losses = [(t.weight, create_loss(t.name, **t.params)) for t in cfg.losses]
        if not self.losses:
            raise ConfigError("losses: at least one metric loss is needed")
        self._check_loss_requirements()
        for _, loss in self.losses:
            loss.to(self.device)

        self.sampler = PKBatchSampler(
            [it.label for it in self.train_items], [it.domain for it in self.train_items],
            products_per_batch=cfg.data.products_per_batch, images_per_product=cfg.data.images_per_product,
            seed=cfg.seed, batches_per_epoch=cfg.optim.steps_per_epoch,
            num_replicas=self.dist.world_size, rank=self.dist.rank, with_sample_seeds=True)
        self.steps_per_epoch = cfg.optim.steps_per_epoch or len(self.sampler)
        self.total_steps = self.steps_per_epoch * cfg.optim.epochs
        head = [p for n, p in self.model.named_parameters() if p.requires_grad and not n.startswith("features.")]
        body = [p for n, p in self.model.named_parameters() if p.requires_grad and n.startswith("features.")]
        extra = [p for _, loss in self.losses if not loss.trains_own_parameters
                 for p in loss.parameters() if p.requires_grad]
        groups = [{"params": body, "lr": cfg.optim.lr},
                  {"params": head + extra, "lr": cfg.optim.lr * cfg.optim.head_lr_multiplier}]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.optim.weight_decay)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.forward = TrainForward(self.model)
        if self.dist.enabled:
            self.forward = nn.parallel.DistributedDataParallel(
                self.forward, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        # bf16 where the GPU has it (no overflow, no scaler needed); else fp16 with a GradScaler, so
        # small gradients do not underflow to zero (tests/gpu/test_gpu_amp.py checks both against fp32).
        self.amp_dtype = (torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        if cfg.channels_last and self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        self.imagenet_iter = None

    def _check_loss_requirements(self) -> None:
        for _, loss in self.losses:
            for column in loss.required_columns:
                have = column == "tags" and self.manifest.has_tags or column in self.manifest.attribute_names
                if not have:
                    raise DataError(f"loss {type(loss).__name__} needs the manifest column {column!r}, "
                                    f"which {self.manifest.csv_path} does not have")
            loss.bind_manifest(self.manifest, self.train_products)
            loss.bind_model(self.model)

    # -- state ---------------------------------------------------------------------------
    def _set_lr(self) -> None:
        factor = warmup_cosine(self.step, self.cfg.optim.warmup_steps, self.total_steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def resume(self, checkpoint: str | Path) -> None:
        model, _ = load_model(checkpoint)
        check_same_shape(self.model, model, checkpoint, "--resume")
        self.model.load_state_dict(model.state_dict())
        load_loss_state(checkpoint, [loss for _, loss in self.losses])
        state = load_trainer_state(checkpoint, self.optimizer)
        self.start_epoch, self.step = int(state["epoch"]) + 1, int(state["step"])
        self.history = list(state.get("history", []))

    def _save(self, name: str, epoch: int) -> Path:
        state = {"epoch": epoch, "step": self.step, "history": self.history, "config": self.cfg.to_dict(),
                 "multitask_variant": self.multitask}
        path = save_checkpoint(self.out_dir / "checkpoints" / name, self.model,
                               model_config=model_config_of(self.model), trainer_state=state,
                               optimizer=self.optimizer)
        save_loss_state(path, [loss for _, loss in self.losses])
        return path

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    # -- loop ----------------------------------------------------------------------------
    def _imagenet_batch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        from .data.imagenet_folder import ImageNetFolder, infinite_batches

        if self.imagenet_iter is None or self.imagenet_iter[0] != epoch:
            folder = ImageNetFolder(self.cfg.data.imagenet_folder, self.cfg.data.image_size)
            size = self.cfg.data.imagenet_batch or max(1, self.cfg.data.products_per_batch
                                                        * self.cfg.data.images_per_product // 2)
            self.imagenet_iter = (epoch, infinite_batches(folder, size, seed=epoch_seed(self.cfg.seed, epoch)))
        return next(self.imagenet_iter[1])

    def _train_step(self, x: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor, epoch: int) -> dict:
        x = x.to(self.device, non_blocking=True)
        labels, domains = labels.to(self.device), domains.to(self.device)
        if self.cfg.channels_last and self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        parts: dict[str, float] = {}
        # False only in a loss's own-training phase (DAML's generator-only epochs): no model update.
        update = all(loss.updates_model for _, loss in self.losses)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp), \
                torch.set_grad_enabled(update):
            emb, logits, pooled = self.forward(x, labels, domains)
            total = torch.zeros((), device=self.device)
            for (weight, loss), term in zip(self.losses, self.cfg.losses, strict=True):
                value = loss(emb.float(), labels, domains)
                parts[f"loss/{term.name}"] = float(value.detach())
                for key, extra in loss.last.items():
                    parts[f"loss/{term.name}/{key}"] = extra
                total = total + weight * value
                if self.cfg.head.pooled_loss_weight > 0:  # same loss on the pooled features
                    on_pooled = loss(l2_normalise(pooled.float()), labels, domains)
                    parts[f"loss/{term.name}/pooled"] = float(on_pooled.detach())
                    total = total + self.cfg.head.pooled_loss_weight * weight * on_pooled
            if self.cfg.head.orthogonal_weight > 0:
                ortho = orthogonality_penalty(self.model.embed.weight.float())
                parts["loss/head_orthogonality"] = float(ortho.detach())
                total = total + self.cfg.head.orthogonal_weight * ortho
            if self.multitask == "distillation":
                with torch.no_grad():
                    teacher_logits = self.teacher.forward_train(x).logits
                cls = distillation(logits.float(), teacher_logits.float(), self.cfg.multitask.temperature)
            elif self.multitask == "imagenet":
                img, target = self._imagenet_batch(epoch)
                _, img_logits, _ = self.forward(img.to(self.device))
                cls = imagenet_ce(img_logits.float(), target.to(self.device))
            else:
                cls = None
            if cls is not None:
                parts[f"loss/{self.multitask}"] = float(cls.detach())
                total = total + self.cfg.multitask.lambda_cls * cls
        parts["loss"] = float(total.detach())
        if not update:
            return parts
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()  # the scaler is a no-op unless fp16 AMP is on
        if self.cfg.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return parts

    def _set_train_mode(self) -> None:
        self.model.train()
        if self.cfg.model.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _check_head_config(self) -> None:
        head = self.cfg.head
        if head.init not in HEAD_INITS:
            raise ConfigError(f"head.init: unknown {head.init!r}; choose one of {', '.join(HEAD_INITS)}")
        if head.projection not in PROJECTIONS:
            raise ConfigError(f"head.projection: unknown {head.projection!r}; choose one of {', '.join(PROJECTIONS)}")
        if head.projection_dim is not None and (head.projection_dim < 1 or head.projection == "none"):
            raise ConfigError(f"head.projection_dim={head.projection_dim} needs head.projection=pca and a size >= 1")
        weights = {"pooled_loss_weight": head.pooled_loss_weight, "orthogonal_weight": head.orthogonal_weight,
                   "whiten_power": head.whiten_power}
        for name, value in weights.items():
            if value < 0:
                raise ConfigError(f"head.{name} must be >= 0, got {value}")
        if (head.init != "random" or head.projection != "none" or head.orthogonal_weight) and \
                not (isinstance(self.model, EmbeddingNet) and isinstance(self.model.embed, nn.Linear)):
            raise ConfigError(f"head.* settings need a linear head; {type(self.model).__name__} has none")

    def _fit_head(self, kind: str, size: int | None = None) -> dict[str, Any]:
        """PCA (or whitening) of the current pooled features of the training images, un-augmented,
        at ``size`` (default: the ship size), folded into the linear head (see models/projection.py)."""
        size = size or self.eval_size
        dataset = EvalImages(self.train_items, size)
        projection = fit_head(self.model, dataset, self.device, kind, self.cfg.data.eval_batch_size,
                              whiten_power=self.cfg.head.whiten_power)
        return {"kind": kind, "images": projection.samples, "explained_variance": projection.explained,
                "image_size": size, "whiten_power": self.cfg.head.whiten_power, "normalise_pooled": self.cfg.head.normalise_pooled}

    def _project_head(self, epoch: int) -> None:
        """After the last epoch: replace the trained head by the PCA of the fine-tuned pooled
        features, then evaluate again (the record says ``stage: projection``)."""
        before = head_spectrum(self.model.embed.weight)
        dim = self.cfg.head.projection_dim
        if dim and dim != self.model.embed.out_features:  # ship a wider (or narrower) embedding than trained
            self.model.embed = nn.Linear(self.model.embed.in_features, dim).to(self.device)
            self.model.embedding_dim = dim
        self.head_log["projection"] = {**self._fit_head(self.cfg.head.projection), "trained_head": before}
        metrics = self.evaluate()
        record = {"type": "eval", "stage": "projection", "epoch": epoch + 1, "step": self.step, **metrics,
                  "head": self.head_log}
        self.history.append(record)
        self._log(record)

    def refit_head(self, trained_size: int | None = None) -> dict[str, Any]:
        """Re-fit the loaded model's PCA head at the ship size, without training (``dp-train
        --eval-only --checkpoint C --refit-head``): FixRes after the fact, on a finished run.
        ``trained_size``: the size the backbone was trained at, recorded when it differs."""
        if self.cfg.head.projection == "none":
            raise ConfigError("--refit-head needs head.projection=pca or pca_whiten (the config's head)")
        self.model.input_size = self.eval_size
        if trained_size and int(trained_size) != self.eval_size:
            self.model.extra_config = {**self.model.extra_config, "trained_input_size": int(trained_size)}
        self.head_log = {"projection": self._fit_head(self.cfg.head.projection)}
        return self.head_log

    def save_model(self, name: str = "last") -> Path:
        """The model alone (no optimiser) as ``checkpoints/NAME``: what an eval-only refit ships."""
        return save_checkpoint(self.out_dir / "checkpoints" / name, self.model,
                               model_config=model_config_of(self.model),
                               trainer_state={"config": self.cfg.to_dict(), "head": self.head_log})

    def evaluate(self, off_the_shelf: bool = False) -> dict[str, Any]:
        if self._eval_set is None:
            items, _ = items_for_split(self.manifest, "test")
            self._eval_set = EvalImages(items, self.eval_size, cache=True)
        metrics = evaluate_retrieval(self.model, self.manifest, self.eval_size, self.device,
                                     batch_size=self.cfg.data.eval_batch_size, off_the_shelf=off_the_shelf,
                                     progress=self.progress, eval_set=self._eval_set)
        return metrics | self._transfer_metrics(off_the_shelf)

    def _transfer_metrics(self, off_the_shelf: bool = False) -> dict[str, Any]:
        """Transfer-set Recall@K of the head and of the pooled features ({} without a transfer set);
        off the shelf there is no trained head, so only the pooled figures are kept."""
        if self.transfer is None:
            return {}
        out = self.transfer(self.model, self.device, self.cfg.data.eval_batch_size)
        return {k: v for k, v in out.items() if "/pooled/" in k or "/recall@" not in k} if off_the_shelf else out

    def train(self) -> TrainResult:
        cfg = self.cfg
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
            if self.start_epoch == 0:  # a fresh run replaces an earlier run's log; a resumed one appends
                (self.out_dir / "metrics.jsonl").unlink(missing_ok=True)
        dataset = TrainImages(self.train_items, cfg.data.image_size, cfg.data.augment)
        seen, elapsed = 0, 0.0
        if self.transfer is not None and cfg.eval.transfer_at_start and self.start_epoch == 0 and self.dist.is_main:
            # The starting point (pretrained, or the initialised head) on the transfer set: epoch 0 of its curves.
            self._log({"type": "transfer", "stage": "start", "epoch": 0, "step": 0, **self._transfer_metrics()})
        metrics: dict[str, Any] = {}
        for epoch in range(self.start_epoch, cfg.optim.epochs):
            torch.manual_seed(epoch_seed(cfg.seed, epoch))
            self.sampler.set_epoch(epoch)
            for _, loss in self.losses:
                loss.set_epoch(epoch)
            loader = DataLoader(dataset, batch_sampler=self.sampler, num_workers=cfg.data.workers,
                                generator=torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch)),
                                persistent_workers=False)
            self._set_train_mode()
            bar = progress_bar(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
                               disable=not (self.progress and self.dist.is_main))
            for x, labels, domains in loader:
                self._set_lr()
                t0 = time.perf_counter()
                parts = self._train_step(x, labels, domains, epoch)
                dt = time.perf_counter() - t0
                seen += x.shape[0] * self.dist.world_size
                elapsed += dt
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.4f}")
                if self.step % cfg.log_every == 0 or self.step == 1:
                    self._log({"type": "train", "epoch": epoch + 1, "step": self.step,
                               "lr": self.optimizer.param_groups[0]["lr"],
                               "images_per_s": seen / max(elapsed, 1e-9), **parts})
            bar.close()
            if self.dist.is_main:
                if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.optim.epochs:
                    metrics = self.evaluate()
                    record = {"type": "eval", "epoch": epoch + 1, "step": self.step, **metrics}
                    self.history.append(record)
                    self._log(record)
                if epoch + 1 == cfg.optim.epochs and cfg.head.projection != "none":
                    self._project_head(epoch)
                self._save("last", epoch)
            barrier(self.dist)
        result = TrainResult(self.out_dir, self.history, self.history[-1] if self.history else metrics,
                             seen / max(elapsed, 1e-9), self.multitask)
        if self.dist.is_main:
            summary = {"final": result.final_metrics, "images_per_s": result.images_per_s,
                       "device": str(self.device), "world_size": self.dist.world_size,
                       "multitask_variant": self.multitask, "steps": self.step, "head": self.head_log,
                       "train_seconds": elapsed, "threads": torch.get_num_threads(),
                       "cpu_count": os.cpu_count(), **reproducibility_facts(cfg)}
            from .atomic import write_text_atomic

            write_text_atomic(self.out_dir / "summary.json", json.dumps(summary, indent=2))
        return result

    def close(self) -> None:
        shutdown(self.dist)
