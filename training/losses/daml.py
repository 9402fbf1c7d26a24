r"""DAML: deep adversarial metric learning (docs/method.md section 4; paper 004).

Hard negatives are rare in a batch, so a generator turns the plentiful easy negatives into
synthetic hard ones, trained adversarially against the embedding.

* Generator G(a, p, n) -> n~: an MLP on the concatenated unit embeddings (3D -> 2D -> D), written
  as a residual on n and L2-normalised, n~ = normalize(n + MLP([a, p, n])), so it starts at the
  real negative (our choice: a stable start; the last layer is zero-initialised).
* Generator loss, averaged over the triplets (squared distances of unit vectors):
      J_gen = ||n~ - a||^2 + lambda_reg ||n~ - n||^2 - lambda_adv * triplet(a, p, n~),
      triplet(a, p, x) = max(0, ||a - p|| - ||a - x|| + margin);
  the first term makes n~ hard (close to the anchor), the second keeps it near a real negative
  (so it stays a plausible negative), the third is the adversarial term.
* Embedding loss: J_m = real_weight * triplet-loss(real batch triplets)
                        + lambda_synth * triplet-loss(a, p, n~),
  both pytorch-metric-learning ``TripletMarginLoss`` (mean over the non-zero triplets); the
  real triplets are all the batch's triplets, the synthetic ones ``g_triplets_per_anchor`` random
  triplets per anchor (PML's ``convert_to_triplets``). Gradients of the synthetic term reach the
  embedding through G's inputs; G's own weights are frozen for that pass.
* Phases, as in PML's ``DeepAdversarialMetricLearning`` trainer (``update_loss_weights``): the
  first ``metric_alone_epochs`` epochs train the embedding only (real triplets, no generator), the
  next ``g_alone_epochs`` epochs train the generator only (the embedding is not updated: the loss
  reports ``updates_model = False`` and the trainer skips its optimiser step), then both.

What is reused from pytorch-metric-learning: the phase schedule and flags of its DAML trainer, its
random-triplet sampler (``lmu.convert_to_triplets``), its ``TripletMarginLoss`` and the
``EmbeddingsAlreadyPackagedAsTriplets`` miner for the synthetic triplets. Its trainer class itself
cannot drive our loop (it owns the data loading, models dict and optimisers), and it sums every
loss into one backward pass, so the generator also receives the embedding's synthetic-triplet
gradient and the embedding the generator's adversarial gradient (PML compensates with loss weights
and a sign-flipped ``NegativeLpDistance`` hinge). Here the two players are separated instead: the
generator is trained by its own Adam optimiser inside this loss, on detached embeddings, and the
trainer leaves its parameters out of the model optimiser (``trains_own_parameters = True``).

Not supported with DDP (the generator would be trained per process, unsynchronised). On resume,
the generator weights come back from the checkpoint; its Adam moments restart.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import EmbeddingsAlreadyPackagedAsTriplets
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
from torch import nn

from .base import MetricLoss
from .registry import register_loss


class NegativeGenerator(nn.Module):
    """n~ = normalize(n + MLP([a, p, n])); zero-initialised last layer -> starts at n~ = n."""

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or 2 * dim
        self.mlp = nn.Sequential(nn.Linear(3 * dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return F.normalize(n + self.mlp(torch.cat([a, p, n], dim=1)), dim=1)


def triplet_hinge(a: torch.Tensor, p: torch.Tensor, x: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-triplet max(0, ||a - p|| - ||a - x|| + margin)."""
    return torch.relu((a - p).norm(dim=1) - (a - x).norm(dim=1) + margin)


def generator_objective(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, n_tilde: torch.Tensor,
                        lambda_reg: float, lambda_adv: float, margin: float) -> torch.Tensor:
    """J_gen (see the module docstring), mean over the triplets."""
    hard = ((n_tilde - a) ** 2).sum(1)
    reg = ((n_tilde - n) ** 2).sum(1)
    adv = triplet_hinge(a, p, n_tilde, margin)
    return (hard + lambda_reg * reg - lambda_adv * adv).mean()


class DAMLLoss(MetricLoss):
    """Real + synthetic-negative triplet loss, with its own adversarially trained generator."""

    trains_own_parameters = True  # the trainer leaves the generator out of the model optimiser

    def __init__(self, margin: float = 0.2, lambda_reg: float = 1.0, lambda_adv: float = 1.0,
                 lambda_synth: float = 1.0, real_weight: float = 1.0, metric_alone_epochs: int = 1,
                 g_alone_epochs: int = 1, g_triplets_per_anchor: int = 16, g_lr: float = 1e-3,
                 g_hidden: int | None = None) -> None:
        super().__init__()
        if margin < 0 or lambda_reg < 0 or lambda_adv < 0 or lambda_synth < 0 or real_weight < 0:
            raise ValueError("daml: margin and the lambdas / weights must be >= 0")
        if metric_alone_epochs < 0 or g_alone_epochs < 0 or g_triplets_per_anchor < 1 or g_lr <= 0:
            raise ValueError("daml: need metric_alone_epochs, g_alone_epochs >= 0, g_triplets_per_anchor >= 1, "
                             "g_lr > 0")
        self.margin, self.lambda_reg, self.lambda_adv = float(margin), float(lambda_reg), float(lambda_adv)
        self.lambda_synth, self.real_weight = float(lambda_synth), float(real_weight)
        self.metric_alone_epochs, self.g_alone_epochs = int(metric_alone_epochs), int(g_alone_epochs)
        self.g_triplets_per_anchor, self.g_lr, self.g_hidden = int(g_triplets_per_anchor), float(g_lr), g_hidden
        distance = LpDistance(normalize_embeddings=True, p=2)
        self.triplet = TripletMarginLoss(margin=self.margin, distance=distance)
        self.packaged = EmbeddingsAlreadyPackagedAsTriplets()
        self.generator: NegativeGenerator | None = None
        self.g_optimizer: torch.optim.Optimizer | None = None
        self.last: dict[str, float] = {}
        self.set_epoch(0)

    # -- hooks used by the trainer ----------------------------------------------------------------
    def bind_model(self, model: Any) -> None:
        self.build(int(model.embedding_dim))

    def build(self, embedding_dim: int) -> None:
        self.generator = NegativeGenerator(embedding_dim, self.g_hidden)

    def set_epoch(self, epoch: int) -> None:
        """PML's ``update_loss_weights`` with 0-based epochs: metric only, generator only, both."""
        self.epoch = int(epoch)
        self.do_metric_alone = self.epoch < self.metric_alone_epochs
        self.do_adv_alone = self.metric_alone_epochs <= self.epoch < self.metric_alone_epochs + self.g_alone_epochs
        self.do_both = not (self.do_metric_alone or self.do_adv_alone)
        self.do_adv = self.do_adv_alone or self.do_both
        self.do_metric = self.do_metric_alone or self.do_both

    @property
    def updates_model(self) -> bool:
        """False in the generator-only phase: the trainer must not step the embedding then."""
        return self.do_metric

    # -- the two players --------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        assert self.generator is not None
        if self.g_optimizer is None:  # created lazily: after the trainer has moved us to the device
            self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.g_lr)
        return self.g_optimizer

    def generator_step(self, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> float:
        """One Adam step of the generator on detached embeddings; returns J_gen before the step."""
        assert self.generator is not None
        opt = self._optimizer()
        with torch.enable_grad(), torch.autocast(a.device.type, enabled=False):
            a, p, n = a.detach().float(), p.detach().float(), n.detach().float()
            self.generator.requires_grad_(True)
            j = generator_objective(a, p, n, self.generator(a, p, n), self.lambda_reg, self.lambda_adv,
                                    self.margin)
            opt.zero_grad(set_to_none=True)
            j.backward()
            opt.step()
        return float(j.detach())

    def synthetic_loss(self, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Triplet loss on (a, p, n~) with G frozen: gradients reach a, p, n but not G's weights."""
        assert self.generator is not None
        self.generator.requires_grad_(False)
        try:
            n_tilde = self.generator(a, p, n)
        finally:
            self.generator.requires_grad_(True)
        packed = torch.stack([a, p, n_tilde], dim=1).reshape(-1, a.shape[1])  # a0 p0 n0 a1 p1 n1 ...
        lab = torch.arange(len(a), device=a.device).repeat_interleave(3)
        lab[2::3] = -1  # the synthetic negative is of another class than its anchor
        return self.triplet(packed, lab, self.packaged(packed, lab))

    def metric_loss(self, embeddings: torch.Tensor, labels: torch.Tensor,
                    triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """J_m for the embedding with the generator as it is (no generator step)."""
        loss = self.real_weight * self.triplet(embeddings, labels) if self.real_weight > 0 \
            else embeddings.sum() * 0.0
        a_idx, p_idx, n_idx = triplets
        if self.do_both and len(a_idx) > 0 and self.lambda_synth > 0:
            # index_select, not embeddings[idx]: the latter's backward (index_put_ with accumulation
            # over repeated indices) is not deterministic on multi-threaded CPUs
            synth = self.synthetic_loss(*(embeddings.index_select(0, i) for i in (a_idx, p_idx, n_idx)))
            self.last["synthetic"] = float(synth.detach())
            loss = loss + self.lambda_synth * synth
        return loss

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                domains: torch.Tensor | None = None) -> torch.Tensor:
        if self.generator is None:
            raise RuntimeError("daml: the generator is not built (bind_model / build)")
        triplets = lmu.convert_to_triplets(None, labels, t_per_anchor=self.g_triplets_per_anchor)
        a_idx, p_idx, n_idx = triplets
        self.last = {}
        if self.do_adv and len(a_idx) > 0:
            self.last["generator"] = self.generator_step(embeddings[a_idx], embeddings[p_idx], embeddings[n_idx])
        if not self.do_metric:
            return torch.zeros((), device=embeddings.device)  # generator-only phase: nothing for the model
        return self.metric_loss(embeddings, labels, triplets)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, lambda_reg={self.lambda_reg}, lambda_adv={self.lambda_adv}, "
                f"lambda_synth={self.lambda_synth}, real_weight={self.real_weight}, "
                f"metric_alone_epochs={self.metric_alone_epochs}, g_alone_epochs={self.g_alone_epochs}")


@register_loss("daml")
def daml(margin: float = 0.2, lambda_reg: float = 1.0, lambda_adv: float = 1.0, lambda_synth: float = 1.0,
         real_weight: float = 1.0, metric_alone_epochs: int = 1, g_alone_epochs: int = 1,
         g_triplets_per_anchor: int = 16, g_lr: float = 1e-3, g_hidden: int | None = None) -> DAMLLoss:
    """docs/method.md section 4, DAML (paper 004); see the module docstring."""
    return DAMLLoss(margin=margin, lambda_reg=lambda_reg, lambda_adv=lambda_adv, lambda_synth=lambda_synth,
                    real_weight=real_weight, metric_alone_epochs=metric_alone_epochs,
                    g_alone_epochs=g_alone_epochs, g_triplets_per_anchor=g_triplets_per_anchor, g_lr=g_lr,
                    g_hidden=g_hidden)
