"""Config overrides for a tiny training run (tiny_cnn, 16-d, 64 px, 2 x 3 steps): seconds on a CPU."""

from __future__ import annotations

from pathlib import Path


def tiny_overrides(manifest: Path, out: Path, **extra) -> list[str]:
    """``key=value`` overrides for ``load_config``; ``extra`` adds or replaces keys."""
    base = {"data.manifest": str(manifest), "out_dir": str(out), "model.backbone": "tiny_cnn",
            "model.pretrained": "false", "model.embedding_dim": 16, "data.image_size": 64,
            "data.products_per_batch": 3, "data.images_per_product": 3, "optim.epochs": 2,
            "optim.steps_per_epoch": 3, "optim.warmup_steps": 2, "multitask.variant": "none",
            "log_every": 1, "threads": 1, "data.eval_batch_size": 16}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
