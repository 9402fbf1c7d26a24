r"""Robust contrastive loss (docs/method.md section 2) — our reading of the paper 002 abstract.

The paper's full text is not available to us; this formula is our reading of its abstract.

For a pair (i, j) of unit embeddings, d = ||f_i - f_j||_2 in [0, 2], y = 1 if same product:

* positive residual  r+ = max(0, d - m_pos)   (positives closer than m_pos are not pulled further:
  relaxed positives keep the spread between phone photos and studio shots of one product);
* negative residual  r- = max(0, m_neg - d)   (negatives farther than m_neg cost nothing);
* Huber penalty      rho_delta(r) = r^2 / 2            if r <= delta
                                  = delta (r - delta/2)  otherwise
  so d rho / d r = min(r, delta) <= delta: a mislabelled pair cannot dominate a batch;
* L = sum_{positive pairs} rho(r+) / #{active positive pairs}
    + sum_{negative pairs} rho(r-) / #{active negative pairs},   active = residual > 0;
  a part with no active pair contributes 0.

Defaults m_pos = 0.3, m_neg = 0.9, delta = 0.5. Pairs are all ordered pairs (i, j), i != j, of the
batch (a P x K batch); counting (i, j) and (j, i) both leaves each average unchanged.

Special case: m_pos = 0, delta = inf gives the classical contrastive loss of Hadsell et al. 2006,
d^2/2 on positives and max(0, m - d)^2/2 on negatives with m = m_neg (averaged over active pairs,
as PML's ``ContrastiveLoss`` does with its default ``AvgNonZeroReducer``). The ``contrastive``
baseline in :mod:`.baselines` is exactly that; ``tests/training/test_losses.py`` checks it numerically.

Optional hard mining: ``hard_negatives=k`` keeps, per anchor, only the k negatives closest to it.
A PML miner's pair tuples can also be passed as ``indices_tuple`` when called the PML way.
"""

from __future__ import annotations

import math

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import GenericPairLoss

from .registry import PMLLoss, register_loss


def huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    """rho_delta(r) for r >= 0, written as q (r - q/2) with q = min(r, delta).

    Same values as the two-branch definition, finite for delta = inf, and its gradient min(r, delta)
    has no NaN from an unselected ``torch.where`` branch.
    """
    q = r.clamp(max=delta) if math.isfinite(delta) else r
    return q * (r - 0.5 * q)


class RobustContrastiveLoss(GenericPairLoss):
    """Relaxed-margin Huber contrastive loss; see the module docstring for the formula.

    PML calling convention: ``loss(embeddings, labels, indices_tuple=None)``. Use
    ``create_loss("robust_contrastive", ...)`` for the (embeddings, labels, domains) convention.
    """

    def __init__(self, m_pos: float = 0.3, m_neg: float = 0.9, delta: float = 0.5,
                 hard_negatives: int | None = None, **kwargs) -> None:
        if not delta > 0:
            raise ValueError(f"delta must be > 0 (float('inf') allowed), got {delta}")
        if m_pos < 0 or m_neg <= 0:
            raise ValueError(f"margins must satisfy m_pos >= 0 and m_neg > 0, got m_pos={m_pos}, m_neg={m_neg}")
        if hard_negatives is not None and hard_negatives < 1:
            raise ValueError(f"hard_negatives must be >= 1 or None, got {hard_negatives}")
        kwargs.setdefault("distance", LpDistance(normalize_embeddings=True, p=2))
        super().__init__(mat_based_loss=True, **kwargs)
        self.m_pos, self.m_neg, self.delta = float(m_pos), float(m_neg), float(delta)
        self.hard_negatives = hard_negatives
        self.add_to_recordable_attributes(list_of_names=["m_pos", "m_neg", "delta"], is_stat=False)

    def keep_hardest_negatives(self, mat: torch.Tensor, neg_mask: torch.Tensor) -> torch.Tensor:
        """Restrict ``neg_mask`` to the ``hard_negatives`` smallest-distance negatives of each anchor."""
        k = min(int(self.hard_negatives), mat.shape[1])
        masked = mat.detach().masked_fill(neg_mask == 0, float("inf"))
        idx = masked.topk(k, dim=1, largest=False).indices
        keep = torch.zeros_like(neg_mask).scatter_(1, idx, 1.0)
        return keep * neg_mask  # rows with fewer than k negatives keep only real negatives

    def _compute_loss(self, mat: torch.Tensor, pos_mask: torch.Tensor,
                      neg_mask: torch.Tensor) -> dict[str, dict]:
        if self.hard_negatives is not None:
            neg_mask = self.keep_hardest_negatives(mat, neg_mask)
        r_pos = torch.relu(mat - self.m_pos)
        r_neg = torch.relu(self.m_neg - mat)
        active_pos = (pos_mask > 0) & (r_pos > 0)
        active_neg = (neg_mask > 0) & (r_neg > 0)
        return {
            "pos_loss": self._mean_over_active(huber(r_pos, self.delta), active_pos),
            "neg_loss": self._mean_over_active(huber(r_neg, self.delta), active_neg),
        }

    @staticmethod
    def _mean_over_active(per_pair: torch.Tensor, active: torch.Tensor) -> dict:
        n = active.sum()
        total = (per_pair * active).sum()  # inactive entries contribute exactly 0 (value and gradient)
        value = total / n.clamp(min=1)  # no active pair -> 0 (still attached to the graph)
        return {"losses": value, "indices": None, "reduction_type": "already_reduced"}

    def _sub_loss_names(self) -> list[str]:
        return ["pos_loss", "neg_loss"]


@register_loss("robust_contrastive")
def robust_contrastive(m_pos: float = 0.3, m_neg: float = 0.9, delta: float = 0.5,
                       hard_negatives: int | None = None) -> PMLLoss:
    """docs/method.md section 2 (our reading of paper 002); ``delta`` may be ``float('inf')``."""
    return PMLLoss(RobustContrastiveLoss(m_pos=m_pos, m_neg=m_neg, delta=float(delta),
                                         hard_negatives=hard_negatives))
