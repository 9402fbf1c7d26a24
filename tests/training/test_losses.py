"""Metric losses: hand-computed values, the classical special case, bounded gradients, registry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import ContrastiveLoss

from deepproduct.training.losses import RobustContrastiveLoss, create_loss, huber, list_losses, register_loss
from deepproduct.training.losses.baselines import SquaredContrastiveLoss

# Two products, two images each, unit vectors in 2-D (z = 0 padding keeps D = 3):
#   A1 = (1, 0)     A2 = (0.8, 0.6)     B1 = (0.6, 0.8)     B2 = (-0.6, 0.8)
# Distances by hand, d = sqrt(dx^2 + dy^2):
#   positives  d(A1,A2) = sqrt(0.2^2 + 0.6^2) = sqrt(0.40) = 0.632456
#              d(B1,B2) = sqrt(1.2^2 + 0^2)   = 1.2
#   negatives  d(A1,B1) = sqrt(0.4^2 + 0.8^2) = sqrt(0.80) = 0.894427
#              d(A1,B2) = sqrt(1.6^2 + 0.8^2) = sqrt(3.20) = 1.788854
#              d(A2,B1) = sqrt(0.2^2 + 0.2^2) = sqrt(0.08) = 0.282843
#              d(A2,B2) = sqrt(1.4^2 + 0.2^2) = sqrt(2.00) = 1.414214
EMB = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [-0.6, 0.8, 0.0]])
LABELS = torch.tensor([0, 0, 1, 1])
DOMAINS = torch.tensor([0, 1, 0, 1])
D_A1A2, D_B1B2 = math.sqrt(0.4), 1.2
D_A1B1, D_A1B2, D_A2B1, D_A2B2 = math.sqrt(0.8), math.sqrt(3.2), math.sqrt(0.08), math.sqrt(2.0)


def rho(r: float, delta: float) -> float:
    return r * r / 2 if r <= delta else delta * (r - delta / 2)


def test_hand_distances_match_the_vectors() -> None:
    d = torch.cdist(EMB, EMB)
    assert d[0, 1].item() == pytest.approx(D_A1A2, abs=1e-6)
    assert d[2, 3].item() == pytest.approx(D_B1B2, abs=1e-6)
    assert d[0, 2].item() == pytest.approx(D_A1B1, abs=1e-6)
    assert d[0, 3].item() == pytest.approx(D_A1B2, abs=1e-6)
    assert d[1, 2].item() == pytest.approx(D_A2B1, abs=1e-6)
    assert d[1, 3].item() == pytest.approx(D_A2B2, abs=1e-6)


def test_robust_contrastive_hand_value() -> None:
    # m_pos = 0.3, m_neg = 0.9, delta = 0.5
    # positives: r+(A1,A2) = 0.332456 <= delta -> rho = 0.332456^2 / 2 = 0.055264
    #            r+(B1,B2) = 0.9      >  delta -> rho = 0.5 * (0.9 - 0.25) = 0.325
    #            both active -> mean 0.190132
    # negatives: r-(A1,B1) = 0.005573 -> rho = 0.0000155;  r-(A2,B1) = 0.617157 > delta -> rho = 0.183579
    #            A1-B2 (1.79) and A2-B2 (1.41) are beyond m_neg: inactive -> mean over 2 = 0.091797
    # L = 0.190132 + 0.091797 = 0.281929
    pos = [rho(D_A1A2 - 0.3, 0.5), rho(D_B1B2 - 0.3, 0.5)]
    neg = [rho(0.9 - D_A1B1, 0.5), rho(0.9 - D_A2B1, 0.5)]
    expected = sum(pos) / 2 + sum(neg) / 2
    assert expected == pytest.approx(0.281929, abs=1e-6)
    loss = create_loss("robust_contrastive")(EMB, LABELS, DOMAINS)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    # the PML-convention class gives the same
    assert RobustContrastiveLoss()(EMB, LABELS).item() == pytest.approx(expected, abs=1e-5)


def test_robust_contrastive_hard_negatives() -> None:
    # keep the 1 closest negative per anchor (ordered pairs):
    #   A1 -> B1 (0.894, active), A2 -> B1 (0.283, active), B1 -> A2 (0.283, active), B2 -> A2 (1.41, inactive)
    # negative mean = (rho(0.005573) + 2 rho(0.617157)) / 3 = 0.122391
    pos_mean = (rho(D_A1A2 - 0.3, 0.5) + rho(D_B1B2 - 0.3, 0.5)) / 2
    neg_mean = (rho(0.9 - D_A1B1, 0.5) + 2 * rho(0.9 - D_A2B1, 0.5)) / 3
    loss = create_loss("robust_contrastive", hard_negatives=1)(EMB, LABELS, DOMAINS)
    assert loss.item() == pytest.approx(pos_mean + neg_mean, abs=1e-5)
    assert pos_mean + neg_mean == pytest.approx(0.312522, abs=1e-5)


def test_no_active_pairs_gives_zero() -> None:
    # every positive inside m_pos, every negative beyond m_neg
    emb = torch.tensor([[1.0, 0.0], [0.995, 0.0998749], [-1.0, 0.0], [-0.995, 0.0998749]], requires_grad=True)
    loss = create_loss("robust_contrastive")(emb, LABELS, DOMAINS)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(emb.grad == 0)


def test_classical_special_case_equals_hadsell_and_pml() -> None:
    # m_pos = 0, delta = inf: positives d^2 / 2, negatives max(0, 0.9 - d)^2 / 2 (Hadsell et al. 2006)
    #   positives: 0.40 / 2 = 0.2 and 1.44 / 2 = 0.72              -> mean 0.46
    #   negatives: 0.005573^2 / 2 = 0.0000155, 0.617157^2 / 2 = 0.190441 -> mean 0.095229
    #   L = 0.555229
    hadsell = (D_A1A2**2 / 2 + D_B1B2**2 / 2) / 2 + ((0.9 - D_A1B1) ** 2 / 2 + (0.9 - D_A2B1) ** 2 / 2) / 2
    assert hadsell == pytest.approx(0.555229, abs=1e-6)
    robust = create_loss("robust_contrastive", m_pos=0.0, m_neg=0.9, delta=float("inf"))(EMB, LABELS, DOMAINS)
    baseline = create_loss("contrastive", margin=0.9)(EMB, LABELS, DOMAINS)
    pml_squared = SquaredContrastiveLoss(pos_margin=0, neg_margin=0.9)(EMB, LABELS)
    for value in (robust, baseline, pml_squared):
        assert value.item() == pytest.approx(hadsell, abs=1e-5)
    # PML's own (unsquared) ContrastiveLoss: the hinge mean, (0.632456 + 1.2)/2 + (0.005573 + 0.617157)/2
    hinge = (D_A1A2 + D_B1B2) / 2 + ((0.9 - D_A1B1) + (0.9 - D_A2B1)) / 2
    assert hinge == pytest.approx(1.227593, abs=1e-6)
    pml = ContrastiveLoss(pos_margin=0, neg_margin=0.9, distance=LpDistance(normalize_embeddings=True, p=2))
    assert pml(EMB, LABELS).item() == pytest.approx(hinge, abs=1e-5)
    assert create_loss("contrastive", squared=False)(EMB, LABELS, DOMAINS).item() == pytest.approx(hinge, abs=1e-5)
    # ...and our Huber with a tiny delta is that hinge: for r > delta, rho/delta + delta/2 = r,
    # so L(delta)/delta + delta (one delta/2 per part) = PML's ContrastiveLoss
    eps = 1e-3  # below every active residual (smallest: 0.005573)
    small = create_loss("robust_contrastive", m_pos=0.0, m_neg=0.9, delta=eps)(EMB.double(), LABELS, DOMAINS)
    assert small.item() / eps + eps == pytest.approx(hinge, abs=1e-6)


def test_classical_case_matches_on_random_batches() -> None:
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(24, 8, generator=g), dim=1)
    labels = torch.arange(6).repeat_interleave(4)
    domains = torch.tensor([0, 1]).repeat(12)
    a = create_loss("robust_contrastive", m_pos=0.0, m_neg=1.2, delta=float("inf"))(emb, labels, domains)
    b = create_loss("contrastive", margin=1.2)(emb, labels, domains)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def _grad_wrt_distance(d: float, positive: bool, **params) -> float:
    """dL/dd for a batch with a single pair (two items), through the loss's own _compute_loss."""
    loss = RobustContrastiveLoss(**params)
    mat = torch.tensor([[0.0, d], [d, 0.0]], dtype=torch.float64, requires_grad=True)
    off = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    pos, neg = (off, torch.zeros_like(off)) if positive else (torch.zeros_like(off), off)
    parts = loss._compute_loss(mat, pos, neg)
    total = parts["pos_loss"]["losses"] + parts["neg_loss"]["losses"]
    (grad,) = torch.autograd.grad(total, mat)
    return float(grad[0, 1] + grad[1, 0])  # the symmetric pair's distance appears twice


def test_gradient_beyond_delta_stays_bounded() -> None:
    # a "positive" pair 1.9 apart (e.g. a mislabelled image): r+ = 1.6 > delta = 0.5
    # Huber: dL/dd = min(r, delta) = 0.5; the classical squared loss would give r = 1.6
    assert _grad_wrt_distance(1.9, True) == pytest.approx(0.5, abs=1e-9)
    assert _grad_wrt_distance(1.9, True, m_pos=0.0, delta=float("inf")) == pytest.approx(1.9, abs=1e-9)
    # a "negative" pair 0.05 apart: r- = 0.85 > delta -> dL/dd = -0.5
    assert _grad_wrt_distance(0.05, False) == pytest.approx(-0.5, abs=1e-9)
    # inside delta the gradient is the residual itself: d = 0.5 -> r+ = 0.2
    assert _grad_wrt_distance(0.5, True) == pytest.approx(0.2, abs=1e-9)
    for d in torch.linspace(0.0, 2.0, 41).tolist():
        for positive in (True, False):
            assert abs(_grad_wrt_distance(d, positive)) <= 0.5 + 1e-12


def test_gradient_bounded_inside_a_batch() -> None:
    # the same bound through the embeddings: the per-pair gradient wrt each distance <= delta
    emb = F.normalize(torch.randn(12, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    labels = torch.arange(3).repeat_interleave(4)
    loss = RobustContrastiveLoss()
    mat = torch.cdist(emb, emb).double().requires_grad_()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(12, dtype=torch.bool)
    parts = loss._compute_loss(mat, (same & ~eye).double(), (~same).double())
    (grad,) = torch.autograd.grad(parts["pos_loss"]["losses"] + parts["neg_loss"]["losses"], mat)
    assert grad.abs().max().item() <= 0.5
    assert torch.isfinite(grad).all()


def test_huber_matches_two_branch_definition() -> None:
    r = torch.tensor([0.0, 0.1, 0.5, 0.7, 2.0])
    expected = torch.tensor([rho(x, 0.5) for x in r.tolist()])
    assert torch.allclose(huber(r, 0.5), expected)
    assert torch.allclose(huber(r, float("inf")), r**2 / 2)


def _toy_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(3, 8, generator=g), dim=1)
    x = centres.repeat_interleave(4, 0) + 0.9 * torch.randn(12, 8, generator=g)
    return x, torch.arange(3).repeat_interleave(4), torch.tensor([0, 1]).repeat(6)


@pytest.mark.parametrize("name", ["robust_contrastive", "contrastive", "triplet"])
def test_one_step_lowers_each_loss(name: str) -> None:
    x, labels, domains = _toy_batch()
    param = torch.nn.Parameter(x.clone())
    loss_fn = create_loss(name)
    opt = torch.optim.SGD([param], lr=0.05)
    before = loss_fn(F.normalize(param, dim=1), labels, domains)
    assert before.item() > 0
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn(F.normalize(param, dim=1), labels, domains)
    assert after.item() < before.item()


@pytest.mark.parametrize("name", ["robust_contrastive", "contrastive", "triplet"])
def test_domains_are_ignored_and_output_is_scalar(name: str) -> None:
    x, labels, domains = _toy_batch(1)
    emb = F.normalize(x, dim=1)
    loss_fn = create_loss(name)
    a = loss_fn(emb, labels, domains)
    b = loss_fn(emb, labels, 1 - domains)
    assert a.ndim == 0 and torch.isfinite(a)
    assert a.item() == pytest.approx(b.item())


def test_registry_errors() -> None:
    assert {"robust_contrastive", "contrastive", "triplet"} <= set(list_losses())
    with pytest.raises(KeyError) as err:
        create_loss("robust_contrastiv")
    assert "robust_contrastive" in str(err.value) and "triplet" in str(err.value)
    with pytest.raises(TypeError, match="m_posx"):
        create_loss("robust_contrastive", m_posx=0.1)
    with pytest.raises(ValueError, match="delta"):
        create_loss("robust_contrastive", delta=0.0)
    with pytest.raises(ValueError, match="miner"):
        create_loss("triplet", miner="hardest")
    with pytest.raises(ValueError, match="registered twice"):
        register_loss("triplet")(lambda: None)
    # YAML may spell infinity as a string
    assert math.isinf(create_loss("robust_contrastive", delta="inf").loss.delta)
