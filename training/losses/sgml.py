r"""SGML: semantic-granularity metric learning (docs/method.md section 4; paper 000) -- our reading.

The paper's full text is not available to us; the formulas below are our reading of its abstract
(docs/method.md section 4 says the same). What the abstract claims, and why we implement it this way:
different products are not equally different -- a red striped mug and a red dotted mug share more
than a red mug and a blue bag -- so a negative pair that shares attributes should be pushed apart
less than one that shares nothing, and the attribute task and the embedding should be learnt
together so that the attribute space shapes the metric.

For a batch of unit embeddings f_i with product labels y_i and the products' attribute sets A_y
(the manifest's ``attr_<name>`` columns, as ``name=value`` items; unknown attributes are left out):

* semantic granularity  g_ij = |A_i & A_j| / |A_i | A_j|   (Jaccard; g = 1 for the same product,
  0 when neither product has a known attribute);
* cosine similarity     S_ij = f_i . f_j;
* soft binomial deviance (Yi et al. 2014, with the negatives weighted by 1 - g):
      L_dev = 1/|P| sum_{(i,j) in P} log(1 + exp(-alpha (S_ij - beta)))
            + 1/|N| sum_{(i,j) in N} (1 - g_ij) log(1 + exp(alpha C (S_ij - beta)))
  over all ordered pairs i != j of the batch, P the same-product pairs, N the others (the
  1/|P|, 1/|N| balance is Yi et al.'s); a part with no pair contributes 0;
* attribute head: a linear layer on the embedding (the shared feature; it is part of the loss, so
  it is trained with the embedding but never exported) gives one logit per known ``name=value``
  of the training products, trained with multi-label BCE against the product's values
      L_attr = mean over (image, value column) with a known attribute of BCE(logit, target);
  a product whose attribute is unknown contributes nothing to that attribute's columns;
* L = L_dev + lambda_attr * L_attr.

Defaults alpha = 2, beta = 0.5, C = 25 (binomial-deviance defaults of Yi et al. 2014),
lambda_attr = 0.5. ``attributes`` picks the attribute columns (default: every ``attr_`` column).

Note that a negative pair whose products have identical attribute sets gets weight 0: with coarse
attributes only (say category and colour), look-alike siblings would never be separated, so give
SGML the identity-bearing attributes too (pattern, text, logo on the embedded benchmark).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import MetricLoss
from .registry import register_loss


class SGMLLoss(MetricLoss):
    """Soft binomial deviance weighted by attribute granularity, plus the attribute head's BCE.

    Needs the product attributes: the trainer calls :meth:`bind_manifest` (label -> product ->
    attributes) and :meth:`bind_model` (the embedding width, for the head); tests can call
    :meth:`set_products` and :meth:`build_head` directly.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 0.5, C: float = 25.0, lambda_attr: float = 0.5,
                 attributes: Sequence[str] | None = None) -> None:
        super().__init__()
        if alpha <= 0 or C <= 0:
            raise ValueError(f"sgml: alpha and C must be > 0, got alpha={alpha}, C={C}")
        if lambda_attr < 0:
            raise ValueError(f"sgml: lambda_attr must be >= 0, got {lambda_attr}")
        self.alpha, self.beta, self.C, self.lambda_attr = float(alpha), float(beta), float(C), float(lambda_attr)
        self.attributes = list(attributes) if attributes is not None else None
        # The trainer checks these against the manifest and names the missing one.
        self.required_columns: tuple[str, ...] = tuple(self.attributes or ())
        self.values: list[str] = []  # "name=value" per head output / multi-hot column
        self.register_buffer("targets", torch.zeros(0, 0), persistent=False)  # products x values
        self.register_buffer("known", torch.zeros(0, 0), persistent=False)  # attribute known?
        self.head: nn.Linear | None = None

    # -- binding -----------------------------------------------------------------------------
    def bind_manifest(self, manifest: Any, train_products: Sequence[str]) -> None:
        """Per training product (label order), its known attributes from the manifest rows."""
        from ..data.product_dataset import DataError

        names = self.attributes if self.attributes is not None else list(manifest.attribute_names)
        if not names:
            raise DataError(f"loss 'sgml' needs product attribute columns (attr_<name>, e.g. attr_category, "
                            f"attr_colour) in the manifest; {manifest.csv_path} has none")
        per_product: dict[str, dict[str, str]] = {p: {} for p in train_products}
        for row in manifest.rows:
            if row.product_id in per_product:
                for name in names:
                    if name in row.attributes:
                        per_product[row.product_id].setdefault(name, row.attributes[name])
        if not any(per_product.values()):
            raise DataError(f"loss 'sgml': no training product has a known value for "
                            f"{', '.join('attr_' + n for n in names)} in {manifest.csv_path}")
        self.set_products([per_product[p] for p in train_products], names)

    def set_products(self, product_attributes: Sequence[Mapping[str, str]],
                     names: Sequence[str] | None = None) -> None:
        """Attributes of products 0..n-1 (the labels); builds the multi-hot targets."""
        names = list(names) if names is not None else sorted({k for a in product_attributes for k in a})
        self.values = sorted({f"{k}={v}" for a in product_attributes for k, v in a.items() if k in names})
        column = {v: i for i, v in enumerate(self.values)}
        name_of = [v.split("=", 1)[0] for v in self.values]
        targets = torch.zeros(len(product_attributes), len(self.values))
        known = torch.zeros_like(targets)
        for p, attrs in enumerate(product_attributes):
            for k, v in attrs.items():
                if k in names:
                    targets[p, column[f"{k}={v}"]] = 1.0
            known[p] = torch.tensor([1.0 if n in attrs else 0.0 for n in name_of])
        self.targets, self.known = targets, known

    def bind_model(self, model: Any) -> None:
        self.build_head(int(model.embedding_dim))

    def build_head(self, embedding_dim: int) -> None:
        if not self.values:
            raise RuntimeError("sgml: bind the product attributes (bind_manifest / set_products) first")
        self.head = nn.Linear(embedding_dim, len(self.values)).to(self.targets.device)

    # -- the loss ----------------------------------------------------------------------------
    def granularity(self, labels: torch.Tensor) -> torch.Tensor:
        """g_ij = Jaccard overlap of the attribute sets of the products of images i and j."""
        m = self.targets[labels]
        inter = m @ m.T
        size = m.sum(1)
        union = size[:, None] + size[None, :] - inter
        g = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
        same = labels[:, None] == labels[None, :]
        return torch.where(same, torch.ones_like(g), g)

    def deviance(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        s = embeddings @ embeddings.T
        n = len(labels)
        off = ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
        same = (labels[:, None] == labels[None, :]) & off
        diff = (labels[:, None] != labels[None, :]) & off
        pos = F.softplus(-self.alpha * (s - self.beta))
        neg = (1.0 - self.granularity(labels)) * F.softplus(self.alpha * self.C * (s - self.beta))
        pos_term = (pos * same).sum() / same.sum().clamp(min=1)
        neg_term = (neg * diff).sum() / diff.sum().clamp(min=1)
        return pos_term + neg_term

    def attribute_loss(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError("sgml: the attribute head is not built (bind_model / build_head)")
        logits = self.head(embeddings)
        weight = self.known[labels]
        bce = F.binary_cross_entropy_with_logits(logits, self.targets[labels], weight=weight, reduction="sum")
        return bce / weight.sum().clamp(min=1)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor | None = None) -> torch.Tensor:
        loss = self.deviance(embeddings, labels)
        if self.lambda_attr > 0:
            loss = loss + self.lambda_attr * self.attribute_loss(embeddings, labels)
        return loss

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, beta={self.beta}, C={self.C}, lambda_attr={self.lambda_attr}, "
                f"attribute_values={len(self.values)}")


@register_loss("sgml")
def sgml(alpha: float = 2.0, beta: float = 0.5, C: float = 25.0, lambda_attr: float = 0.5,
         attributes: list[str] | None = None) -> SGMLLoss:
    """docs/method.md section 4, SGML (our reading of paper 000); see the module docstring."""
    return SGMLLoss(alpha=alpha, beta=beta, C=C, lambda_attr=lambda_attr, attributes=attributes)
