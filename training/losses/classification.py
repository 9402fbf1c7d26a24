r"""Product classification on the embedding: the "classification" part of LRML's multiple loss.

LRML (paper 001) combines its ranking loss with a contrastive loss and a classification loss.
The classification here is over the *training products* (one class per product), with
pytorch-metric-learning's ``NormalizedSoftmaxLoss`` (Zhai & Wu 2018, "normalized softmax"):

    L = mean_i CE( softmax_c( cos(f_i, w_c) / T ), y_i ),   T = ``temperature`` = 0.05,

with one learnable proxy w_c per training product. The proxies belong to the loss (not exported);
the class count and the embedding width come from the trainer's ``bind_manifest`` / ``bind_model``
hooks, since neither is known when the config is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pytorch_metric_learning.losses import NormalizedSoftmaxLoss

from .base import MetricLoss
from .registry import register_loss


class ProductSoftmaxLoss(MetricLoss):
    """PML ``NormalizedSoftmaxLoss`` over the training products, built once the sizes are known."""

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"normalized_softmax: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.num_classes: int | None = None
        self.loss: NormalizedSoftmaxLoss | None = None

    def bind_manifest(self, manifest: Any, train_products: Sequence[str]) -> None:
        self.num_classes = len(train_products)

    def bind_model(self, model: Any) -> None:
        self.build(int(model.embedding_dim))

    def build(self, embedding_dim: int, num_classes: int | None = None) -> None:
        classes = num_classes if num_classes is not None else self.num_classes
        if not classes:
            raise RuntimeError("normalized_softmax: the number of products is unknown (bind_manifest first)")
        self.num_classes = int(classes)
        self.loss = NormalizedSoftmaxLoss(num_classes=self.num_classes, embedding_size=embedding_dim,
                                          temperature=self.temperature)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor | None = None) -> torch.Tensor:
        if self.loss is None:
            raise RuntimeError("normalized_softmax: not built (bind_manifest + bind_model, or build())")
        return self.loss(embeddings, labels)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, num_classes={self.num_classes}"


@register_loss("normalized_softmax")
def normalized_softmax(temperature: float = 0.05) -> ProductSoftmaxLoss:
    """Classification over the training products (PML NormalizedSoftmaxLoss); see the module docstring."""
    return ProductSoftmaxLoss(temperature=temperature)
