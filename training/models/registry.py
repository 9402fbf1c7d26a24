"""Backbone registry in the manner of timm's ``register_model``: a name -> builder table.

A builder returns a :class:`Backbone`: the feature extractor, its pooled width, the ImageNet
classifier that the multitask branch keeps, and the normalisation constants that the exporter
folds into the graph and records in the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

_BACKBONES: dict[str, Callable[..., Backbone]] = {}


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
    def wrap(fn: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} registered twice")
        _BACKBONES[name] = fn
        return fn

    return wrap


def list_backbones() -> list[str]:
    return sorted(_BACKBONES)


def create_backbone(name: str, pretrained: bool | str = True) -> Backbone:
    """Build a registered backbone; ``pretrained`` is True (its shipped weights), False, or a path."""
    if name not in _BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; registered: {', '.join(list_backbones())}")
    return _BACKBONES[name](pretrained=pretrained)


def load_local_weights(module: nn.Module, path: str) -> None:
    """Load a local state dict (.safetensors or a weights-only .pth); never a hub download."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(state, strict=True)
