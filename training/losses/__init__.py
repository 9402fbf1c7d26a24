"""Metric losses (a registry: ``create_loss(name, **params)``) and the multitask ImageNet losses.

Importing this package registers ``robust_contrastive``, ``contrastive`` and ``triplet``, and the
seed alternatives of docs/method.md section 4: ``sgml``, ``lrml`` (with ``normalized_softmax``, its
classification part) and ``daml``.
Every registered loss is called as ``loss(embeddings, labels, domains) -> scalar``.
"""

from . import baselines, classification, daml, lrml, robust_contrastive, sgml  # noqa: F401  (import = register)
from .multitask import (
    MULTITASK_VARIANTS,
    DistillationLoss,
    ImageNetCELoss,
    distillation,
    imagenet_ce,
    make_frozen_teacher,
    resolve_variant,
)
from .registry import PMLLoss, create_loss, list_losses, loss_params, register_loss
from .robust_contrastive import RobustContrastiveLoss, huber

__all__ = [
    "MULTITASK_VARIANTS",
    "DistillationLoss",
    "ImageNetCELoss",
    "PMLLoss",
    "RobustContrastiveLoss",
    "create_loss",
    "distillation",
    "huber",
    "imagenet_ce",
    "list_losses",
    "loss_params",
    "make_frozen_teacher",
    "register_loss",
    "resolve_variant",
]
