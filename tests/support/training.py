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


def assert_resume_equals_uninterrupted(tiny_manifest: Path, out: Path, **extra) -> None:
    """A run stopped after its first epoch and resumed by a fresh trainer ends with the weights of
    the same run never stopped (rtol 1e-4, atol 1e-5); ``extra`` overrides, e.g. ``device="cuda"``.
    One body for the CPU test and its GPU twin."""
    import torch

    from deepproduct.training.checkpoint import load_model
    from deepproduct.training.config import load_config
    from deepproduct.training.trainer import Trainer

    def trainer(name: str) -> Trainer:
        return Trainer(load_config(None, tiny_overrides(tiny_manifest, out, name=name, **extra)), progress=False)

    trainer("full").train()
    half = trainer("half")  # the same run, killed after its first epoch: only that checkpoint survives ...
    half.cfg.optim.epochs = 1
    half.train()
    resumed = trainer("half")  # ... then resumed by a fresh process with the full schedule
    resumed.resume(out / "half" / "checkpoints" / "last.safetensors")
    assert resumed.start_epoch == 1 and resumed.step == 3
    resumed.train()
    a, _ = load_model(out / "full" / "checkpoints" / "last.safetensors")
    b, _ = load_model(out / "half" / "checkpoints" / "last.safetensors")
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)
