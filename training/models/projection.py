"""Head projections that keep what the pooled backbone features know.

Why this exists: a randomly initialised 128-d linear head trained with a metric loss on ~300
procedural products learns only the directions that separate *those* products; the fine-tuned
backbone's pooled features transfer far better than the head's output (measured in
docs/transfer-recipe.md). A PCA of the pooled features, fitted on the training
images without labels, keeps the directions of largest variance instead, so distances between
embeddings approximate (centred) distances between pooled features.

Everything here produces the weights of the existing ``nn.Linear`` head: the projection
x -> W (x - mu) is folded in as weight W and bias -W mu, so the model (and every export) stays the
plain image -> pooled -> linear -> L2-normalised graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

PROJECTIONS = ("none", "pca", "pca_whiten")
HEAD_INITS = ("random", "pca")


@dataclass
class Projection:
    """x -> weight @ x + bias; ``explained`` = share of the training variance the kept axes hold."""

    weight: torch.Tensor  # D x C
    bias: torch.Tensor  # D
    explained: float
    samples: int


def pca_projection(features: torch.Tensor, dim: int, whiten: bool = False, eps: float = 1e-6,
                   whiten_power: float | None = None) -> Projection:
    """Centred PCA of ``features`` (N x C) to ``dim`` axes, as a linear layer's weight and bias.

    The rows of the weight are the top principal axes (orthonormal); ``whiten`` divides each by its
    standard deviation, so every kept axis has unit variance on the fitting data; ``whiten_power``
    p divides by std ** p instead (p = 0.5: "square-root" whitening, between PCA and whitening: it
    lifts the weaker axes without amplifying the noisiest ones as much). Signs follow
    ``torch.linalg.svd`` (any sign is equally valid; the embedding distances do not depend on it).
    """
    if features.ndim != 2:
        raise ValueError(f"PCA needs an N x C feature matrix, got shape {tuple(features.shape)}")
    n, c = features.shape
    if dim < 1 or dim > c:
        raise ValueError(f"PCA to {dim} dimensions is impossible from {c}-d features")
    if n <= dim:
        raise ValueError(f"PCA to {dim} dimensions needs more than {dim} fitting images, got {n}")
    x = features.detach().double()
    mu = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mu, full_matrices=False)
    weight = vt[:dim]
    power = 1.0 if whiten else float(whiten_power or 0.0)
    if power:
        std = s[:dim] / (n - 1) ** 0.5
        weight = weight / std.clamp_min(eps).pow(power)[:, None]
    total = float((s * s).sum())
    explained = float((s[:dim] ** 2).sum()) / total if total > 0 else 1.0
    return Projection(weight.float(), (-(weight @ mu)).float(), explained, n)


@torch.no_grad()
def fold_projection(linear: nn.Linear, projection: Projection) -> None:
    """Write ``projection`` into ``linear`` in place (shapes must match: the exported layer stays)."""
    if tuple(linear.weight.shape) != tuple(projection.weight.shape):
        raise ValueError(f"projection {tuple(projection.weight.shape)} does not fit the head "
                         f"{tuple(linear.weight.shape)}")
    if linear.bias is None:
        raise ValueError("the head has no bias to hold the PCA centring")
    linear.weight.copy_(projection.weight.to(linear.weight))
    linear.bias.copy_(projection.bias.to(linear.bias))


def orthogonality_penalty(weight: torch.Tensor) -> torch.Tensor:
    """||W W^T / s - I||_F^2 / D with s = mean squared row norm: 0 iff the rows are orthogonal and
    equally long. Scale-free, because the embedding is L2-normalised and only directions matter."""
    gram = weight @ weight.T
    d = gram.shape[0]
    scale = gram.diagonal().mean().clamp_min(1e-12)
    eye = torch.eye(d, device=weight.device, dtype=weight.dtype)
    return ((gram / scale - eye) ** 2).sum() / d


@torch.no_grad()
def pooled_features(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 64) -> torch.Tensor:
    """Pooled backbone features (N x C, before the head) of every image of ``dataset`` (eval mode)."""
    was_training = model.training
    model.eval()
    out = []
    for x, _, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        _, pooled = model.pooled_features(x.to(device))
        out.append(pooled.float().cpu())
    model.train(was_training)
    if not out:
        raise ValueError("no images to fit the projection on")
    return torch.cat(out)


def fit_head(model: nn.Module, dataset: Dataset, device: torch.device, kind: str = "pca",
             batch_size: int = 64, whiten_power: float = 0.0) -> Projection:
    """Fit ``kind`` (``pca`` or ``pca_whiten``) on ``dataset``'s pooled features -- as the head
    sees them (unit-normalised when ``model.normalise_pooled``) -- and fold it into ``model.embed``;
    returns the projection (for the run's log)."""
    if kind not in ("pca", "pca_whiten"):
        raise ValueError(f"unknown head projection {kind!r}; choose one of {', '.join(PROJECTIONS)}")
    feats = pooled_features(model, dataset, device, batch_size)
    if getattr(model, "normalise_pooled", False):
        feats = torch.nn.functional.normalize(feats, dim=1)
    projection = pca_projection(feats, model.embed.out_features, whiten=kind == "pca_whiten",
                                whiten_power=whiten_power)
    fold_projection(model.embed, projection)
    return projection


def head_spectrum(weight: torch.Tensor) -> dict[str, float]:
    """Singular-value summary of a head weight: effective rank exp(H(p)), p = s^2 / sum s^2, and the
    share of energy in the top 10 % of directions (diagnoses a collapsing projection)."""
    s = torch.linalg.svdvals(weight.detach().double())
    p = s * s / (s * s).sum()
    entropy = -(p * p.clamp_min(1e-30).log()).sum()
    top = max(1, len(s) // 10)
    return {"effective_rank": float(entropy.exp()), "top10pct_energy": float(p[:top].sum()),
            "condition": float(s[0] / s[-1].clamp_min(1e-30))}


__all__ = ["HEAD_INITS", "PROJECTIONS", "Projection", "fit_head", "fold_projection", "head_spectrum",
           "orthogonality_penalty", "pca_projection", "pooled_features"]
