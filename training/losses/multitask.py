r"""Multitask ImageNet regularisation (docs/method.md section 3, paper 002).

Total loss L = L_metric + lambda_cls * L_cls (lambda_cls = 0.5 in the config). Two variants of
L_cls, both on the ImageNet classifier kept on the pooled features:

* ``imagenet`` (the paper's scheme; needs an ImageNet-format folder, see
  :mod:`deepproduct.training.data.imagenet_folder`): each step also draws B_img ImageNet images and
      L_cls = CE(z_student(x_img), y_img)        (mean over the B_img images)
* ``distillation`` (default here: no ImageNet data can be downloaded) on the product images:
      L_cls = T^2 * KL( softmax(z_teacher / T) || softmax(z_student / T) ),   T = 2,
  averaged over the batch, with the teacher a frozen copy of the pretrained network (learning
  without forgetting). The T^2 factor keeps gradient magnitudes comparable across T (Hinton et al.).

These are not metric losses (they take logits, not embeddings), so they are not in the metric-loss
registry; :data:`MULTITASK_VARIANTS` and :func:`resolve_variant` serve the trainer's config. torch's
``cross_entropy`` and ``kl_div`` are the library pieces; nothing else fits better.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

MULTITASK_VARIANTS = ("auto", "imagenet", "distillation", "none")


def imagenet_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the ImageNet classifier logits (N x 1000) on real ImageNet images."""
    return F.cross_entropy(logits, targets)


def distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                 temperature: float = 2.0) -> torch.Tensor:
    """T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), batch mean; no gradient into the teacher."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return kl * (t * t)


class ImageNetCELoss(nn.Module):
    """Module form of :func:`imagenet_ce`: ``loss(logits, targets)``."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return imagenet_ce(logits, targets)


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation`: ``loss(student_logits, teacher_logits)``."""

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        return distillation(student_logits, teacher_logits, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


def make_frozen_teacher(model: nn.Module) -> nn.Module:
    """A frozen copy of the (pretrained) network: eval mode, no gradients.

    Call it before any fine-tuning step. ``train()`` on a parent module would flip it back to
    training mode, so the trainer should keep it outside the student's module tree (or call
    ``.eval()`` again) and run it under ``torch.no_grad()``.
    """
    teacher = copy.deepcopy(model)
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


def resolve_variant(variant: str, imagenet_folder: str | None) -> str:
    """``auto`` -> ``imagenet`` when an ImageNet folder is configured, else ``distillation``."""
    if variant not in MULTITASK_VARIANTS:
        raise ValueError(f"unknown multitask variant {variant!r}; choose one of {', '.join(MULTITASK_VARIANTS)}")
    if variant == "auto":
        return "imagenet" if imagenet_folder else "distillation"
    if variant == "imagenet" and not imagenet_folder:
        raise ValueError("multitask variant 'imagenet' needs data.imagenet_folder (an ImageNet-format "
                         "folder of synset sub-folders); use 'distillation' without ImageNet data")
    return variant
