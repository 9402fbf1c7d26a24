"""Global pooling choices for the embedding head (docs/method.md section 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AvgPool(nn.Module):
    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.mean(dim=(2, 3))


class GeMPool(nn.Module):
    """Generalised mean pooling: (mean x^p)^(1/p), learnable p; between average (p=1) and max."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


POOLINGS = {"avg": AvgPool, "gem": GeMPool}


def create_pooling(name: str) -> nn.Module:
    if name not in POOLINGS:
        raise KeyError(f"unknown pooling {name!r}; choose one of {', '.join(sorted(POOLINGS))}")
    return POOLINGS[name]()


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2, dim=-1, eps=1e-12)
