"""The seed-alternative losses (SGML, LRML + product classification, DAML): hand-computed values on
2-3 products, and one optimiser step on a toy batch lowers each of them."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from deepproduct.training.losses import create_loss
from deepproduct.training.losses.daml import DAMLLoss, generator_objective
from deepproduct.training.losses.sgml import SGMLLoss

# Two products, two images each (the batch of tests/training/test_losses.py), unit vectors:
#   A1 = (1, 0)   A2 = (0.8, 0.6)   B1 = (0.6, 0.8)   B2 = (-0.6, 0.8)
# cosines: S(A1,A2) = 0.8, S(B1,B2) = -0.36 + 0.64 = 0.28,
#          S(A1,B1) = 0.6, S(A1,B2) = -0.6, S(A2,B1) = 0.96, S(A2,B2) = 0.
EMB = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [-0.6, 0.8, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])
DOMAINS = torch.tensor([0, 1, 0, 1])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bound_sgml(attrs: list[dict[str, str]], dim: int = 3, **params) -> SGMLLoss:
    loss = create_loss("sgml", **params)
    loss.set_products(attrs)
    loss.bind_model(SimpleNamespace(embedding_dim=dim))
    return loss


# -- SGML -------------------------------------------------------------------------------------------

MUG_RED, MUG_BLUE = {"category": "mug", "colour": "red"}, {"category": "mug", "colour": "blue"}


def test_sgml_granularity_is_jaccard() -> None:
    loss = bound_sgml([MUG_RED, MUG_BLUE, {"category": "bag"}])
    g = loss.granularity(torch.tensor([0, 1, 2, 0]))
    # A = {mug, red}, B = {mug, blue}: 1 shared of 3 -> 1/3; C = {bag} shares nothing; same product -> 1
    assert g[0, 1].item() == pytest.approx(1 / 3)
    assert g[0, 2].item() == 0.0 and g[1, 2].item() == 0.0
    assert g[0, 3].item() == 1.0 and g[0, 0].item() == 1.0
    # an unknown attribute is left out of the set: {mug, red} vs {mug} -> 1/2
    partial = bound_sgml([MUG_RED, {"category": "mug"}])
    assert partial.granularity(torch.tensor([0, 1]))[0, 1].item() == pytest.approx(0.5)


def test_sgml_soft_binomial_deviance_hand_value() -> None:
    # alpha = 2, beta = 0.5, C = 25, g(A, B) = 1/3 -> negative weight 2/3.
    # positives: log(1 + e^{-2 (0.8 - 0.5)}) = 0.437488,  log(1 + e^{-2 (0.28 - 0.5)}) = 0.937154
    #            mean 0.687321
    # negatives: log(1 + e^{50 (S - 0.5)}) for S = 0.6, -0.6, 0.96, 0
    #            = 5.006715, ~1e-24, 23.000000, 1.4e-11;   (2/3) * mean = 4.667786
    # L_dev = 5.355107
    pos = [softplus(-2 * 0.3), softplus(-2 * -0.22)]
    neg = [softplus(50 * (s - 0.5)) for s in (0.6, -0.6, 0.96, 0.0)]
    expected_dev = sum(pos) / 2 + (2 / 3) * sum(neg) / 4
    assert expected_dev == pytest.approx(5.355107, abs=1e-6)
    loss = bound_sgml([MUG_RED, MUG_BLUE])
    assert loss.deviance(EMB, LABELS).item() == pytest.approx(expected_dev, rel=1e-6)
    # attribute head with zero weights: every logit 0 -> BCE = log 2 per known entry
    with torch.no_grad():
        loss.head.weight.zero_()
        loss.head.bias.zero_()
    assert loss.values == ["category=mug", "colour=blue", "colour=red"]
    assert loss.attribute_loss(EMB, LABELS).item() == pytest.approx(math.log(2), abs=1e-6)
    total = loss(EMB, LABELS, DOMAINS).item()
    assert total == pytest.approx(expected_dev + 0.5 * math.log(2), rel=1e-6)


def test_sgml_pushes_attribute_sharing_negatives_less() -> None:
    same_attrs = bound_sgml([MUG_RED, MUG_BLUE], lambda_attr=0.0)
    disjoint = bound_sgml([MUG_RED, {"category": "bag", "colour": "blue"}], lambda_attr=0.0)
    assert same_attrs(EMB, LABELS).item() < disjoint(EMB, LABELS).item()


def test_sgml_attribute_bce_skips_unknown_attributes() -> None:
    loss = bound_sgml([MUG_RED, {"category": "mug"}])
    # product 1 has no colour: its colour columns carry no weight
    assert loss.known[1].tolist() == [1.0, 0.0]  # columns: category=mug, colour=red
    with torch.no_grad():
        loss.head.weight.zero_()
        loss.head.bias.copy_(torch.tensor([0.0, 2.0]))
    # known entries: img A (2 columns), img B (category only) -> (log2 + softplus(-2) + log2) / 3 per pair
    expected = (2 * math.log(2) + softplus(-2.0)) / 3
    got = loss.attribute_loss(EMB[[0, 2]], torch.tensor([0, 1])).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_sgml_without_attributes_names_the_columns() -> None:
    manifest = SimpleNamespace(attribute_names=[], rows=[], csv_path="data/manifest.csv")
    with pytest.raises(ValueError, match=r"attr_<name>.*data/manifest\.csv has none"):
        create_loss("sgml").bind_manifest(manifest, ["p1", "p2"])
    assert create_loss("sgml", attributes=["colour"]).required_columns == ("colour",)


# -- LRML -------------------------------------------------------------------------------------------

def _angles(deg: list[float]) -> torch.Tensor:
    r = torch.tensor(deg, dtype=torch.float64) * math.pi / 180
    return torch.stack([r.cos(), r.sin()], dim=1).float()


# Three products; angle (degrees) -> cos of the angle difference is the similarity.
#   0: A user 0     1: A shop 20    2: A shop 50    3: B shop 40    4: B user 100
#   5: C shop 70    6: C shop -90
LR_EMB = _angles([0, 20, 50, 40, 100, 70, -90])
LR_LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 2])
LR_DOMAINS = torch.tensor([1, 0, 0, 0, 1, 0, 0])


def test_lrml_hand_value() -> None:
    # m_rank = 1, K = 2 -> margins 0.5 (k = 0), 1.0 (k = 1).
    # query 0 (A): hardest shop positive = img 2, S = cos 50 = 0.642788;
    #   shop negatives 3 (cos 40 = 0.766044), 5 (cos 70 = 0.342020), 6 (cos 90 = 0): the 2 lowest
    #   are 6 and 5; by decreasing S: k0 = 5, k1 = 6.
    #   L = max(0, 0.342020 - 0.642788 + 0.5) + max(0, 0 - 0.642788 + 1.0) = 0.199232 + 0.357212
    # query 4 (B): positive img 3, S = cos 60 = 0.5; negatives 1 (cos 80 = 0.173648),
    #   2 (cos 50), 5 (cos 30), 6 (cos 190 = -0.984808): lowest two 6, 1; k0 = 1, k1 = 6.
    #   L = max(0, 0.173648 - 0.5 + 0.5) + max(0, -0.984808 - 0.5 + 1.0) = 0.173648
    # mean over the 2 queries = 0.365046
    c = lambda d: math.cos(math.radians(d))  # noqa: E731
    q0 = max(0, c(70) - c(50) + 0.5) + max(0, c(90) - c(50) + 1.0)
    q4 = max(0, c(80) - c(60) + 0.5) + max(0, c(190) - c(60) + 1.0)
    assert (q0 + q4) / 2 == pytest.approx(0.365046, abs=1e-6)
    loss = create_loss("lrml", m_rank=1.0, num_negatives=2)
    assert loss(LR_EMB, LR_LABELS, LR_DOMAINS).item() == pytest.approx((q0 + q4) / 2, abs=1e-5)
    # the default margins (m_rank = 0.1) leave these far negatives inactive
    assert create_loss("lrml", num_negatives=2)(LR_EMB, LR_LABELS, LR_DOMAINS).item() == 0.0
    # "highest" keeps the most similar negatives instead: query 0 -> 3 (k0), 5 (k1)
    high = create_loss("lrml", m_rank=1.0, num_negatives=2, pick="highest")
    h0 = max(0, c(40) - c(50) + 0.5) + max(0, c(70) - c(50) + 1.0)
    h4 = max(0, c(30) - c(60) + 0.5) + max(0, c(50) - c(60) + 1.0)
    assert high(LR_EMB, LR_LABELS, LR_DOMAINS).item() == pytest.approx((h0 + h4) / 2, abs=1e-5)


def test_lrml_single_domain_uses_every_image_as_query() -> None:
    loss = create_loss("lrml", m_rank=1.0, num_negatives=2)
    value = loss(LR_EMB, LR_LABELS, torch.zeros_like(LR_DOMAINS))
    assert value.item() > 0 and torch.isfinite(value)
    # no positive anywhere -> zero, still differentiable
    emb = LR_EMB.clone().requires_grad_(True)
    zero = loss(emb, torch.arange(7), LR_DOMAINS)
    zero.backward()
    assert zero.item() == 0.0 and emb.grad is not None


# -- product classification (LRML's "classification") ---------------------------------------------

def test_normalized_softmax_hand_value() -> None:
    # proxies w0 = (1, 0), w1 = (0, 1); T = 0.5; logits = cos / T
    # (1, 0) label 0: logits (2, 0) -> CE = log(1 + e^-2) = 0.126928
    # (0.6, 0.8) label 1: logits (1.2, 1.6) -> CE = log(1 + e^-0.4) = 0.513015;  mean 0.319972
    loss = create_loss("normalized_softmax", temperature=0.5)
    loss.bind_manifest(None, ["p0", "p1"])
    loss.bind_model(SimpleNamespace(embedding_dim=2))
    with torch.no_grad():
        loss.loss.W.copy_(torch.eye(2))
    value = loss(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), torch.tensor([0, 1]))
    expected = (softplus(-2.0) + softplus(-0.4)) / 2
    assert expected == pytest.approx(0.319972, abs=1e-6)
    assert value.item() == pytest.approx(expected, abs=1e-6)


# -- DAML -------------------------------------------------------------------------------------------

def test_daml_generator_objective_hand_value() -> None:
    # a = (1, 0), p = (0.8, 0.6), n = (0, 1), n~ = (0.6, 0.8), margin 0.5:
    # ||n~ - a||^2 = 0.16 + 0.64 = 0.8;  ||n~ - n||^2 = 0.36 + 0.04 = 0.4
    # triplet = max(0, sqrt(0.4) - sqrt(0.8) + 0.5) = 0.632456 - 0.894427 + 0.5 = 0.238029
    # J = 0.8 + 1.0 * 0.4 - 1.0 * 0.238029 = 0.961971
    a, p, n, nt = (torch.tensor([v]) for v in ([1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]))
    j = generator_objective(a, p, n, nt, lambda_reg=1.0, lambda_adv=1.0, margin=0.5)
    assert j.item() == pytest.approx(0.8 + 0.4 - (math.sqrt(0.4) - math.sqrt(0.8) + 0.5), abs=1e-6)
    assert j.item() == pytest.approx(0.961971, abs=1e-6)


def test_daml_metric_phase_is_the_triplet_loss_hand_value() -> None:
    # distances: d(A1,A2) = 0.632456, d(B1,B2) = 1.2, d(A1,B1) = 0.894427, d(A1,B2) = 1.788854,
    # d(A2,B1) = 0.282843, d(A2,B2) = 1.414214.  margin 0.2, all 8 triplets; non-zero:
    #   (A2, A1, B1): 0.632456 - 0.282843 + 0.2 = 0.549613
    #   (B1, B2, A1): 1.2 - 0.894427 + 0.2 = 0.505573;   (B1, B2, A2): 1.2 - 0.282843 + 0.2 = 1.117157
    # mean over the non-zero triplets = 0.724114
    loss = create_loss("daml", metric_alone_epochs=1, g_alone_epochs=1)
    loss.bind_model(SimpleNamespace(embedding_dim=3))
    loss.set_epoch(0)
    assert loss.do_metric_alone and loss.updates_model
    before = [p.clone() for p in loss.generator.parameters()]
    assert loss(EMB, LABELS, DOMAINS).item() == pytest.approx(0.724114, abs=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, loss.generator.parameters(), strict=True))


def test_daml_phases_follow_pml_schedule() -> None:
    loss: DAMLLoss = create_loss("daml", metric_alone_epochs=1, g_alone_epochs=2)
    loss.bind_model(SimpleNamespace(embedding_dim=3))
    phases = []
    for epoch in range(5):
        loss.set_epoch(epoch)
        phases.append(("metric" if loss.do_metric_alone else "gen" if loss.do_adv_alone else "both",
                       loss.updates_model))
    assert phases == [("metric", True), ("gen", False), ("gen", False), ("both", True), ("both", True)]
    # generator-only: returns 0 (nothing for the embedding) and trains the generator
    loss.set_epoch(1)
    before = [p.clone() for p in loss.generator.parameters()]
    torch.manual_seed(0)
    out = loss(EMB, LABELS, DOMAINS)
    assert out.item() == 0.0 and not out.requires_grad and "generator" in loss.last
    assert any(not torch.equal(a, b) for a, b in zip(before, loss.generator.parameters(), strict=True))
    # both: a synthetic term appears, and its gradient reaches the embeddings but not the generator
    loss.set_epoch(3)
    emb = EMB.clone().requires_grad_(True)
    out = loss(emb, LABELS, DOMAINS)
    grads = [p.grad.clone() for p in loss.generator.parameters()]  # left by the generator's own step
    out.backward()
    assert "synthetic" in loss.last and emb.grad is not None and torch.count_nonzero(emb.grad) > 0
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, loss.generator.parameters(), strict=True))
    assert loss.trains_own_parameters


def test_daml_generator_starts_at_the_real_negative_and_one_step_lowers_its_loss() -> None:
    torch.manual_seed(0)
    loss: DAMLLoss = create_loss("daml", g_lr=1e-2)
    loss.bind_model(SimpleNamespace(embedding_dim=8))
    a, p, n = (F.normalize(torch.randn(16, 8), dim=1) for _ in range(3))
    assert torch.allclose(loss.generator(a, p, n), n, atol=1e-6)  # zero-initialised residual
    j0 = loss.generator_step(a, p, n)
    with torch.no_grad():
        j1 = generator_objective(a, p, n, loss.generator(a, p, n), 1.0, 1.0, 0.2).item()
    assert j1 < j0


# -- one optimiser step lowers each loss -----------------------------------------------------------

def _toy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 8, generator=g)
    x = centres.repeat_interleave(4, 0) + 0.8 * torch.randn(12, 8, generator=g)
    return x, torch.arange(3).repeat_interleave(4), torch.tensor([1, 0]).repeat(6)


def _make(name: str) -> torch.nn.Module:
    if name == "sgml":
        return bound_sgml([MUG_RED, MUG_BLUE, {"category": "bag", "colour": "red"}], dim=8)
    if name == "lrml":
        return create_loss("lrml", m_rank=1.0, num_negatives=3)
    if name == "normalized_softmax":
        loss = create_loss("normalized_softmax")
        loss.bind_manifest(None, ["a", "b", "c"])
        loss.bind_model(SimpleNamespace(embedding_dim=8))
        return loss
    loss = create_loss("daml", metric_alone_epochs=0, g_alone_epochs=0)  # both players from the start
    loss.bind_model(SimpleNamespace(embedding_dim=8))
    return loss


@pytest.mark.parametrize("name", ["sgml", "lrml", "normalized_softmax", "daml"])
def test_one_step_lowers_each_new_loss(name: str) -> None:
    torch.manual_seed(0)
    x, labels, domains = _toy()
    param = torch.nn.Parameter(x.clone())
    loss_fn = _make(name)
    if name == "daml":
        # the embedding's loss with the generator held fixed and the same triplets before and after
        loss_fn(F.normalize(x, dim=1), labels, domains)  # one generator step: n~ differs from n
        triplets = lmu.convert_to_triplets(None, labels, t_per_anchor=8)

        def value() -> torch.Tensor:
            return loss_fn.metric_loss(F.normalize(param, dim=1), labels, triplets)
    else:
        def value() -> torch.Tensor:
            return loss_fn(F.normalize(param, dim=1), labels, domains)
    opt = torch.optim.SGD([param], lr=0.05)
    before = value()
    assert before.item() > 0
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = value()
    assert after.item() < before.item()
