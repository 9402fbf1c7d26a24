"""Metric-loss registry in the manner of timm's ``register_model``: a name -> factory table.

Every registered loss is a :class:`.base.MetricLoss` (an ``nn.Module`` that declares the
trainer's hooks) with one calling convention, whatever library it comes from::

    loss(embeddings: Tensor[N, D] (unit vectors), labels: LongTensor[N] (product index),
         domains: LongTensor[N] (0 = shop, 1 = user/phone photo)) -> scalar Tensor

Losses that do not use domains ignore them. pytorch-metric-learning (PML) losses take
``(embeddings, labels, indices_tuple, ref_emb, ref_labels)`` instead, so they are registered
through :class:`PMLLoss`, which adapts the call (and applies an optional PML miner); the PML
class itself keeps its own signature so PML wrappers such as ``CrossBatchMemory`` still work.

``create_loss(name, **params)`` checks ``params`` against the factory's signature: a misspelt
parameter in a config is an error that names it, never silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from deepproduct.sdk.registry import Registry, did_you_mean

from .base import MetricLoss

LossFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=LossFactory)

LOSSES: Registry[LossFactory] = Registry("loss")


def register_loss(name: str) -> Callable[[F], F]:
    """Decorator: register a factory (a function or an ``nn.Module`` class) under ``name``.

    The factory's keyword parameters (with defaults) are the loss's config ``params``.
    """

    return LOSSES.register(name)


def list_losses() -> list[str]:
    return LOSSES.names(sort=True)


def _signature(name: str) -> inspect.Signature:
    return inspect.signature(LOSSES.get(name))


def loss_params(name: str) -> dict[str, Any]:
    """The parameters of a registered loss and their defaults (``inspect.Parameter.empty`` if none)."""
    _check_name(name)
    return {p.name: p.default for p in _signature(name).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_name(name: str) -> None:
    if name not in LOSSES:
        raise LOSSES.unknown(name, listed="registered losses")


class LossParameterError(TypeError, ValueError):
    """A loss parameter the loss does not have (a user's config, not a bug)."""


def create_loss(name: str, **params: Any) -> nn.Module:
    """Build a registered loss. Unknown name -> KeyError listing the registered names; unknown
    parameter -> ``LossParameterError`` (a ``TypeError`` and a ``ValueError``: a config mistake, which
    the CLIs report in one line) naming it and listing the loss's parameters."""
    _check_name(name)
    sig = _signature(name)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_any:
        known = loss_params(name)
        for key in params:
            if key not in known:
                raise LossParameterError(f"loss {name!r} has no parameter {key!r}{did_you_mean(key, list(known))}; "
                                f"its parameters: {', '.join(known) or '(none)'}")
    loss = LOSSES.get(name)(**params)
    if not isinstance(loss, MetricLoss):  # the trainer calls MetricLoss's hooks without probing
        raise TypeError(f"loss {name!r}: its factory returned a {type(loss).__name__}, not a MetricLoss "
                        "(deepproduct.training.losses.base); wrap PML losses in PMLLoss")
    return loss


class PMLLoss(MetricLoss):
    """Adapts a pytorch-metric-learning loss (and optional miner) to our calling convention.

    ``domains`` is ignored: PML losses treat every same-label pair alike.
    """

    def __init__(self, loss: nn.Module, miner: nn.Module | None = None) -> None:
        super().__init__()
        self.loss = loss
        self.miner = miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor | None = None) -> torch.Tensor:
        indices_tuple = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, indices_tuple)

    def extra_repr(self) -> str:
        return "adapter: (embeddings, labels, domains) -> PML (embeddings, labels, miner tuples)"
