r"""LRML: learning to rank with rank-dependent margins (docs/method.md section 4; paper 001) -- our reading.

The paper's full text is not available to us; the formula below is our reading of its abstract
(docs/method.md section 4 says the same). The abstract's two points: (1) usual losses push every
negative to the same distance (one ring round the query), losing the ranking structure, so
negatives get *rank-dependent* margins; (2) building the similarity structure over all negatives
is costly, so each query uses one positive from the gallery and the *five lowest-ranked* negatives.

Per query q (a phone photo, domain 1, when the batch has both domains; otherwise every image):

* gallery = the batch's shop images (domain 0) when the batch has both domains, else all images
  but q; S = cosine similarity of unit embeddings;
* positive p: one gallery image of q's product -- we take the least similar one (the hardest; the
  abstract does not say which, and a fixed rule keeps the loss deterministic);
* negatives: gallery images of other products ranked by current similarity to q (most similar
  first); keep the K = ``num_negatives`` = 5 lowest-ranked, i.e. the K least similar ones
  (``pick="highest"`` keeps the K most similar instead -- not the paper's choice, offered for
  comparison); order the kept ones by decreasing similarity, k = 0..K-1;
* L_q = sum_k max(0, S_{q n_k} - S_{q p} + m_rank (1 + k) / K),   m_rank = 0.1;
  the further down the ranking a kept negative is, the larger the gap it must keep, so the
  negatives are spread at different distances;
* L = mean of L_q over the queries that have a positive and at least one negative (0 if none).

The selection (which negatives, their order) uses the similarities without gradient; the hinge
uses them with gradient. The abstract combines this ranking loss with a contrastive loss and a
classification loss ("multiple loss"): that is the trainer's weighted multi-loss config, see
``configs/recipes/lrml.yaml`` (``robust_contrastive`` + ``lrml`` + ``normalized_softmax``).
"""

from __future__ import annotations

import torch

from .base import MetricLoss
from .registry import register_loss

PICKS = ("lowest", "highest")


class LRMLLoss(MetricLoss):
    """Rank-dependent-margin ranking loss; see the module docstring for the formula."""

    def __init__(self, m_rank: float = 0.1, num_negatives: int = 5, pick: str = "lowest") -> None:
        super().__init__()
        if m_rank < 0:
            raise ValueError(f"lrml: m_rank must be >= 0, got {m_rank}")
        if num_negatives < 1:
            raise ValueError(f"lrml: num_negatives must be >= 1, got {num_negatives}")
        if pick not in PICKS:
            raise ValueError(f"lrml: pick must be one of {', '.join(PICKS)}, got {pick!r}")
        self.m_rank, self.num_negatives, self.pick = float(m_rank), int(num_negatives), pick

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor | None = None) -> torch.Tensor:
        n = len(labels)
        device = embeddings.device
        s = embeddings @ embeddings.T
        if domains is not None and bool((domains == 1).any()) and bool((domains == 0).any()):
            query, gallery = domains == 1, domains == 0
        else:
            query = gallery = torch.ones(n, dtype=torch.bool, device=device)
        off = ~torch.eye(n, dtype=torch.bool, device=device)
        same = labels[:, None] == labels[None, :]
        pos_mask = same & gallery[None, :] & off
        neg_mask = ~same & gallery[None, :]
        valid = query & pos_mask.any(1) & neg_mask.any(1)
        if not bool(valid.any()):
            return s.sum() * 0.0  # no usable query: zero, still attached to the graph
        s_q, pos_q, neg_q = s[valid], pos_mask[valid], neg_mask[valid]
        # hardest (least similar) positive per query
        s_pos = s_q.masked_fill(~pos_q, float("inf")).min(1).values
        k = min(self.num_negatives, n)
        detached = s_q.detach()
        if self.pick == "lowest":
            idx = detached.masked_fill(~neg_q, float("inf")).topk(k, dim=1, largest=False).indices
        else:
            idx = detached.masked_fill(~neg_q, float("-inf")).topk(k, dim=1, largest=True).indices
        kept_ok = neg_q.gather(1, idx)  # fewer than k negatives: the extra picks are not negatives
        # order the kept negatives by decreasing similarity: rank k = 0 is the most similar of them
        order = detached.gather(1, idx).masked_fill(~kept_ok, float("-inf")).argsort(1, descending=True)
        idx, kept_ok = idx.gather(1, order), kept_ok.gather(1, order)
        s_neg = s_q.gather(1, idx)
        margins = self.m_rank * (1 + torch.arange(k, device=device, dtype=s.dtype)) / self.num_negatives
        hinge = torch.relu(s_neg - s_pos[:, None] + margins[None, :]) * kept_ok
        return hinge.sum(1).mean()

    def extra_repr(self) -> str:
        return f"m_rank={self.m_rank}, num_negatives={self.num_negatives}, pick={self.pick!r}"


@register_loss("lrml")
def lrml(m_rank: float = 0.1, num_negatives: int = 5, pick: str = "lowest") -> LRMLLoss:
    """docs/method.md section 4, LRML (our reading of paper 001); see the module docstring."""
    return LRMLLoss(m_rank=m_rank, num_negatives=num_negatives, pick=pick)
