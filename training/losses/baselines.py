r"""Baseline metric losses: classical contrastive (Hadsell et al. 2006) and triplet margin.

Both come from pytorch-metric-learning (PML); we only choose the margins and the miner.

``contrastive`` — Hadsell et al.'s contrastive loss with a squared hinge:
    L = mean_{active positive pairs} d^2 / 2 + mean_{active negative pairs} max(0, m - d)^2 / 2,
with d the Euclidean distance of the unit embeddings and m = ``margin`` (default 0.9, our m_neg).
It is PML's ``ContrastiveLoss(pos_margin=0, neg_margin=m)`` with the per-pair hinge squared and
halved, reduced by PML's default ``AvgNonZeroReducer`` (mean over pairs with non-zero loss), and it
equals our robust contrastive loss with m_pos = 0, delta = inf (see
:mod:`.robust_contrastive`; ``tests/training/test_losses.py`` checks the equivalence numerically).
``squared=False`` gives PML's ``ContrastiveLoss`` unchanged (plain hinge).

``triplet`` — PML's ``TripletMarginLoss``: mean over non-zero triplets of
    max(0, d(a, p) - d(a, n) + margin),
on triplets chosen by a PML ``TripletMarginMiner`` (``semihard`` by default: d(a,p) < d(a,n) <=
d(a,p) + margin, FaceNet's choice) or ``BatchHardMiner`` (``miner="batch_hard"``), or all triplets
(``miner="all"``, no miner).
"""

from __future__ import annotations

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import ContrastiveLoss, TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner

from .registry import PMLLoss, register_loss


class SquaredContrastiveLoss(ContrastiveLoss):
    """PML ``ContrastiveLoss`` with Hadsell's squared hinge: per-pair loss hinge^2 / 2."""

    def pos_calc(self, pos_pair_dist: torch.Tensor, margin: float) -> torch.Tensor:
        return 0.5 * super().pos_calc(pos_pair_dist, margin) ** 2

    def neg_calc(self, neg_pair_dist: torch.Tensor, margin: float) -> torch.Tensor:
        return 0.5 * super().neg_calc(neg_pair_dist, margin) ** 2


@register_loss("contrastive")
def contrastive(margin: float = 0.9, pos_margin: float = 0.0, squared: bool = True) -> PMLLoss:
    """Classical contrastive loss (Hadsell et al. 2006) from PML; see the module docstring."""
    cls = SquaredContrastiveLoss if squared else ContrastiveLoss
    return PMLLoss(cls(pos_margin=pos_margin, neg_margin=margin,
                       distance=LpDistance(normalize_embeddings=True, p=2)))


TRIPLET_MINERS = ("semihard", "hard", "easy", "all", "batch_hard")


@register_loss("triplet")
def triplet(margin: float = 0.2, miner: str = "semihard") -> PMLLoss:
    """PML ``TripletMarginLoss`` with a PML miner; see the module docstring."""
    if miner not in TRIPLET_MINERS:
        raise ValueError(f"triplet: unknown miner {miner!r}; choose one of {', '.join(TRIPLET_MINERS)}")
    distance = LpDistance(normalize_embeddings=True, p=2)
    if miner == "batch_hard":
        mining = BatchHardMiner(distance=distance)
    elif miner == "all":
        mining = None
    else:
        mining = TripletMarginMiner(margin=margin, type_of_triplets=miner, distance=distance)
    return PMLLoss(TripletMarginLoss(margin=margin, distance=distance), miner=mining)
