"""One training step of the default recipe with the trainer's AMP matches the same step in fp32.

What "matches" means here (the tolerances, stated once): from the same weights and the same
batch, the loss agrees to 1e-2 relative, the whole gradient (every trainable parameter, one
vector) has cosine >= 0.99 to the fp32 gradient and a difference norm <= 10 % of its norm, and
at most 1 % of the gradient elements that are significant in fp32 (>= 2**-24) come out exactly
zero -- the underflow a float16 step without a GradScaler risks (the trainer's AMP is float16
autocast, training/trainer.py). Measured on CPU (float16 autocast, 64 px, 4x2): loss to 1e-3,
cosine 0.9992, norm 4 %, underflow 0.07 %.

The CPU case forces the trainer's autocast on (it enables it on CUDA only), so the same code
path and the same comparison run in ``make test``; the CUDA case is the real one, at 224 px.
"""

from __future__ import annotations

import pytest
import torch
from gpu_helpers import (
    RECIPE,
    agreement,
    assert_all_finite,
    assert_close_to,
    deterministic_cublas,
    device_params,
    flat,
    gradients,
    underflow_fraction,
)
from torch.utils.data import DataLoader

from deepproduct.training.config import load_config
from deepproduct.training.data.product_dataset import TrainImages
from deepproduct.training.trainer import Trainer

deterministic_cublas()

LOSS_RTOL = 1e-2
MIN_GRAD_COSINE = 0.99
MAX_GRAD_REL_NORM = 0.10
MAX_UNDERFLOW = 0.01


def _one_step(manifest, out, device: str, amp: bool) -> tuple[float, dict[str, torch.Tensor]]:
    """The default recipe's first step from its pretrained start; returns the loss and the gradients."""
    size, (p, k) = (224, (4, 4)) if device == "cuda" else (64, (4, 2))
    cfg = load_config(RECIPE, [
        f"data.manifest={manifest}", f"out_dir={out}", f"name=amp-{amp}-{device}", f"device={device}",
        f"amp={str(amp).lower()}", "channels_last=false", f"data.image_size={size}",
        f"data.products_per_batch={p}", f"data.images_per_product={k}", "data.workers=0",
        "optim.epochs=1", "optim.steps_per_epoch=1", "optim.grad_clip=null", "threads=2",
        "eval.transfer_manifest=null"])
    trainer = Trainer(cfg, progress=False)
    # On CPU the trainer leaves autocast off; switching it on runs its own autocast code here.
    trainer.use_amp = amp
    x, labels, domains = next(iter(DataLoader(TrainImages(trainer.train_items, size, True),
                                              batch_sampler=trainer.sampler)))
    trainer._set_train_mode()
    trainer._set_lr()
    parts = trainer._train_step(x, labels, domains, 0)
    return parts["loss"], gradients(trainer.model)


@pytest.mark.parametrize("device", device_params(cpu_marks=(pytest.mark.slow,)))
def test_amp_step_matches_fp32(device, tiny_manifest, tmp_path):
    loss32, grads32 = _one_step(tiny_manifest, tmp_path, device, amp=False)
    loss16, grads16 = _one_step(tiny_manifest, tmp_path, device, amp=True)
    assert grads32.keys() == grads16.keys() and grads32
    assert_all_finite(grads16, "AMP gradients")
    assert abs(loss16 - loss32) <= LOSS_RTOL * max(1.0, abs(loss32)), (loss32, loss16)
    assert_close_to(agreement("gradient", flat(grads32), flat(grads16)),
                    min_cosine=MIN_GRAD_COSINE, max_rel_norm=MAX_GRAD_REL_NORM)
    lost = underflow_fraction(grads32, grads16)
    assert lost <= MAX_UNDERFLOW, f"{lost:.2%} of the significant gradient elements underflowed to zero"
