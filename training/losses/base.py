"""The metric-loss interface: one calling convention and the trainer's hooks, declared once.

Every registered loss is a :class:`MetricLoss` (``create_loss`` checks it), so the trainer calls
the hooks directly instead of probing for them, and a new method sees here, with their no-op
defaults, everything it may override -- as pytorch-metric-learning's ``BaseMetricLossFunction``
or onnxruntime's ``CalibraterBase`` declare theirs. The plain recipes override none.

Hooks, in the order the trainer uses them:

- ``required_columns``: manifest columns the loss needs (``attr_<name>`` or ``tags``); the trainer
  refuses to start, naming the missing column, before anything is built;
- ``bind_manifest(manifest, train_products)``: sizes learnt from the data (SGML's attributes per
  label, the classification proxies' class count), called before the optimiser is built;
- ``bind_model(model)``: sizes learnt from the model (the embedding width of SGML's head, the
  proxies, DAML's generator);
- ``trains_own_parameters``: True leaves the loss's parameters out of the trainer's optimiser
  (DAML's generator has its own);
- ``set_epoch(epoch)``: called at the start of every epoch (DAML's warm-up phases);
- ``updates_model``: False makes the step run without gradients and skip the model update
  (DAML's generator-only epochs);
- ``last``: extra floats from the latest call, logged as ``loss/<name>/<key>``.

Weights inside a loss (heads, proxies, generators) are checkpointed beside the model
(``NAME.losses.safetensors``) and restored by ``--resume``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn


class MetricLoss(nn.Module):
    """``loss(embeddings [N, D] unit vectors, labels [N] product index, domains [N] 0 shop /
    1 phone photo) -> scalar``, with the trainer's hooks as no-op defaults (module docstring)."""

    required_columns: tuple[str, ...] = ()
    trains_own_parameters: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}

    def bind_manifest(self, manifest: Any, train_products: Sequence[str]) -> None:
        """Learn what the data decides (class counts, attributes); default: nothing."""

    def bind_model(self, model: nn.Module) -> None:
        """Learn what the model decides (embedding width); default: nothing."""

    def set_epoch(self, epoch: int) -> None:
        """Start of an epoch (0-based); default: nothing."""

    @property
    def updates_model(self) -> bool:
        """False while the loss trains only itself: the trainer then skips the model update."""
        return True

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError
