"""The model registries, in the manner of timm's ``register_model``: backbones and architectures.

- **Backbones** (``register_backbone``): a builder returns a :class:`Backbone`: the feature
  extractor, its pooled width, the ImageNet classifier that the multitask branch keeps, and the
  normalisation constants that the exporter folds into the graph and records in the manifest.
- **Architectures** (``register_architecture(name, build, rebuild)``): what sits on a backbone
  (``embedding_net``, ``tag_attention``...). ``build(cfg)`` makes the model from a training config
  (``model.architecture``); ``rebuild(model_config, pooling)`` makes it, with random weights, from
  the ``model_config`` a checkpoint carries, so ``load_model`` (and ``dp-export``) reconstructs any
  registered architecture. The built-in ones register themselves when :mod:`..models` is imported.

Both are :class:`deepproduct.sdk.registry.Registry` tables: a name registered twice is an error,
an unknown name is one line with a did-you-mean hint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from deepproduct.sdk.registry import Registry

if TYPE_CHECKING:
    from ..config import TrainConfig
    from .embedding_net import EmbeddingNet

BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")


@dataclass
class Backbone:
    """What the embedding network needs from a backbone."""

    name: str
    features: nn.Module  # image (normalised) -> feature map N x C x h x w
    num_features: int  # C
    classifier: nn.Module | None  # pooled features -> ImageNet logits (multitask branch)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int
    pretrained: str | None  # where the weights came from; None = random init
    pretrained_cfg: dict
    stages: list[nn.Module]  # ordered blocks, for freezing the first N


def register_backbone(name: str) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    """Decorator: register a backbone builder ``fn(pretrained=...) -> Backbone`` under ``name``."""
    return BACKBONES.register(name)


def list_backbones() -> list[str]:
    return BACKBONES.names(sort=True)


def create_backbone(name: str, pretrained: bool | str = True) -> Backbone:
    """Build a registered backbone; ``pretrained`` is True (its shipped weights), False, or a path."""
    return BACKBONES.get(name)(pretrained=pretrained)


@dataclass(frozen=True)
class Architecture:
    """One ``model.architecture``: how to build it for training and rebuild it from a checkpoint."""

    name: str
    build: Callable[[TrainConfig], EmbeddingNet]  # from a training config (pretrained weights)
    rebuild: Callable[[dict[str, Any], str], EmbeddingNet]  # from (model_config, pooling), random weights


ARCHITECTURES: Registry[Architecture] = Registry("model.architecture")


def register_architecture(name: str, build: Callable[[TrainConfig], EmbeddingNet],
                          rebuild: Callable[[dict[str, Any], str], EmbeddingNet]) -> Architecture:
    """Register an architecture; returns its :class:`Architecture` row."""
    return ARCHITECTURES.register(name, Architecture(name, build, rebuild))


def get_architecture(name: str, error: type[Exception] | None = None) -> Architecture:
    """The row for ``name``; unknown -> ``error`` (default KeyError) with a did-you-mean hint."""
    return ARCHITECTURES.get(name, error)


def list_architectures() -> list[str]:
    return ARCHITECTURES.names(sort=True)


def load_local_weights(module: nn.Module, path: str) -> None:
    """Load a local state dict (.safetensors or a weights-only .pth); never a hub download.

    Anything wrong with the file (missing, a FIFO, not a weights file, other tensors) is one
    ``ValueError`` naming ``model.pretrained`` and the file -- a config mistake, not a bug."""
    import stat as _stat

    try:
        if not _stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError("not a regular file")
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"holds a {type(state).__name__}, not a state dict")
        module.load_state_dict(state, strict=True)
    except Exception as exc:  # torch/safetensors raise many types for a wrong file
        raise ValueError(f"model.pretrained={path}: not usable weights for this backbone "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
