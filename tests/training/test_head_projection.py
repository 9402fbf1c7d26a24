"""PCA/whitening heads, the orthogonality penalty and the trainer's head options (hand-checked values)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from support.training import tiny_overrides
from torch import nn

from deepproduct.training.checkpoint import load_model
from deepproduct.training.config import ConfigError, load_config
from deepproduct.training.data.product_dataset import EvalImages
from deepproduct.training.models.pooling import l2_normalise
from deepproduct.training.models.projection import (
    fit_head,
    fold_projection,
    head_spectrum,
    orthogonality_penalty,
    pca_projection,
    pooled_features,
)
from deepproduct.training.trainer import Trainer

# Four points around (3, 4): spread 1 along x, 0.5 along y. By hand: mean (3, 4), first axis x with
# sum of squares 2, second axis y with 0.5, so PCA-1 keeps 2 / 2.5 = 80 % of the variance.
CROSS = torch.tensor([[4.0, 4.0], [2.0, 4.0], [3.0, 4.5], [3.0, 3.5]])


def test_pca_of_a_hand_made_cross():
    p = pca_projection(CROSS, 1)
    assert p.explained == pytest.approx(0.8)
    assert p.samples == 4
    sign = float(torch.sign(p.weight[0, 0]))
    torch.testing.assert_close(p.weight, torch.tensor([[sign, 0.0]]))
    torch.testing.assert_close(p.bias, torch.tensor([-3.0 * sign]))  # -W mu
    coords = CROSS @ p.weight.T + p.bias
    torch.testing.assert_close(coords.flatten(), sign * torch.tensor([1.0, -1.0, 0.0, 0.0]))


def test_whitening_gives_unit_variance_axes():
    p = pca_projection(CROSS, 2, whiten=True)
    # x: sum of squares 2 over n - 1 = 3 -> std sqrt(2/3); y: 0.5 / 3 -> std sqrt(1/6).
    torch.testing.assert_close(p.weight.abs(), torch.tensor([[math.sqrt(1.5), 0.0], [0.0, math.sqrt(6.0)]]))
    coords = CROSS @ p.weight.T + p.bias
    torch.testing.assert_close(coords.var(0, unbiased=True), torch.ones(2))
    torch.testing.assert_close(coords.mean(0), torch.zeros(2), atol=1e-6, rtol=0)


def test_square_root_whitening_hand_values():
    p = pca_projection(CROSS, 2, whiten_power=0.5)
    # divide by std ** 0.5: x std sqrt(2/3) -> (3/2) ** 0.25; y std sqrt(1/6) -> 6 ** 0.25
    torch.testing.assert_close(p.weight.abs(), torch.tensor([[1.5 ** 0.25, 0.0], [0.0, 6.0 ** 0.25]]))


def test_normalised_pooled_head_round_trips_through_a_checkpoint(tmp_path):
    from deepproduct.training.checkpoint import model_config_of, save_checkpoint
    from deepproduct.training.models import build_embedding_net

    model = build_embedding_net("tiny_cnn", 8, pretrained=False, normalise_pooled=True).eval()
    x = torch.rand(3, 3, 64, 64)
    _, pooled = model.pooled_features(x)
    ref = l2_normalise(model.embed(l2_normalise(pooled)))
    torch.testing.assert_close(model(x), ref)
    # A pooled vector and twice it are the same input once normalised: equal embeddings.
    torch.testing.assert_close(model.embed(model.head_input(2 * pooled)), model.embed(model.head_input(pooled)))
    ckpt = save_checkpoint(tmp_path / "n", model, model_config=model_config_of(model))
    again, cfg = load_model(ckpt)
    assert cfg["normalise_pooled"] is True and again.normalise_pooled
    torch.testing.assert_close(again(x), ref)
    plain, pcfg = load_model(save_checkpoint(tmp_path / "p", build_embedding_net("tiny_cnn", 8, pretrained=False),
                                             model_config={"backbone": "tiny_cnn", "embedding_dim": 8,
                                                           "pooling": "avg", "checkpoint_format_version": 1}))
    assert not plain.normalise_pooled and "normalise_pooled" not in pcfg


def test_pca_head_keeps_rankings_within_the_discarded_variance():
    """Pythagoras: squared distances after PCA-k differ from the centred originals by exactly the
    squared distance of the discarded residuals; with little residual, nearest neighbours agree."""
    g = torch.Generator().manual_seed(0)
    signal = torch.randn(200, 8, generator=g) @ torch.randn(8, 64, generator=g) * 3.0
    feats = signal + 0.01 * torch.randn(200, 64, generator=g)
    p = pca_projection(feats, 8)
    z = feats @ p.weight.T + p.bias
    recon = z @ p.weight + feats.mean(0)
    resid = feats - recon
    d_orig = torch.cdist(feats.double(), feats.double()) ** 2
    d_proj = torch.cdist(z.double(), z.double()) ** 2
    d_resid = torch.cdist(resid.double(), resid.double()) ** 2
    torch.testing.assert_close(d_orig - d_proj, d_resid, atol=1e-2, rtol=0)
    assert p.explained > 0.9999
    eye = torch.eye(200, dtype=torch.bool)
    nn_orig = d_orig.masked_fill(eye, float("inf")).argmin(1)
    nn_proj = d_proj.masked_fill(eye, float("inf")).argmin(1)
    assert bool((nn_orig == nn_proj).all())


class PooledOnly(nn.Module):
    """Stands in for an EmbeddingNet: the 'pooled features' are the input itself."""

    def __init__(self, c: int, d: int) -> None:
        super().__init__()
        self.embed = nn.Linear(c, d)

    def pooled_features(self, x):
        return x, x

    def forward(self, x):
        return l2_normalise(self.embed(x))


def test_fit_head_folds_pca_into_the_linear_layer():
    feats = torch.randn(50, 12, generator=torch.Generator().manual_seed(1))
    data = [(f, 0, 0) for f in feats]
    model = PooledOnly(12, 4)
    proj = fit_head(model, data, torch.device("cpu"), "pca", batch_size=7)
    torch.testing.assert_close(pooled_features(model, data, torch.device("cpu"), 16), feats)
    ref = pca_projection(feats, 4)
    torch.testing.assert_close(model.embed.weight, ref.weight)
    torch.testing.assert_close(model(feats), l2_normalise(feats @ ref.weight.T + ref.bias))
    torch.testing.assert_close(model.embed.weight @ model.embed.weight.T, torch.eye(4), atol=1e-5, rtol=0)
    assert proj.samples == 50


def test_bad_projection_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="needs more than 4 fitting images, got 4"):
        pca_projection(torch.randn(4, 6), 4)
    with pytest.raises(ValueError, match="impossible from 6-d"):
        pca_projection(torch.randn(10, 6), 7)
    with pytest.raises(ValueError, match="does not fit the head"):
        fold_projection(nn.Linear(6, 3), pca_projection(torch.randn(10, 6), 2))
    with pytest.raises(ValueError, match="unknown head projection"):
        fit_head(PooledOnly(6, 2), [(torch.zeros(6), 0, 0)] * 5, torch.device("cpu"), "ica")


def test_orthogonality_penalty_hand_values():
    assert float(orthogonality_penalty(torch.eye(3))) == pytest.approx(0.0)
    assert float(orthogonality_penalty(3.0 * torch.eye(3)[:2])) == pytest.approx(0.0)  # scale-free
    # Two identical rows: W W^T = [[1, 1], [1, 1]], minus I leaves two off-diagonal ones -> 2 / D = 1.
    assert float(orthogonality_penalty(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))) == pytest.approx(1.0)


def test_head_spectrum_hand_values():
    out = head_spectrum(torch.diag(torch.tensor([2.0, 1.0])))
    # p = (0.8, 0.2): exp(-(0.8 ln 0.8 + 0.2 ln 0.2)) = 1.6494
    assert out["effective_rank"] == pytest.approx(math.exp(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2))))
    assert out["top10pct_energy"] == pytest.approx(0.8)
    assert out["condition"] == pytest.approx(2.0)


def test_trainer_pca_init_and_post_training_projection(tiny_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_manifest, tmp_path, name="pca", **{
        "head.init": "pca", "head.projection": "pca", "head.pooled_loss_weight": 1.0,
        "head.orthogonal_weight": 0.1, "head.normalise_pooled": "true", "head.whiten_power": 0.5}))
    trainer = Trainer(cfg, progress=False)
    w = trainer.model.embed.weight.detach()
    gram = w @ w.T  # sqrt-whitened PCA rows: orthogonal, each of squared length 1 / std_i
    torch.testing.assert_close(gram, torch.diag(gram.diagonal()), atol=1e-4, rtol=0)
    trainer.train()
    records = [json.loads(x) for x in (tmp_path / "pca" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert all("loss/contrastive/pooled" in r and "loss/head_orthogonality" in r for r in train) \
        or all("loss/robust_contrastive/pooled" in r and "loss/head_orthogonality" in r for r in train)
    assert records[-1]["stage"] == "projection"
    assert records[-1]["head"]["projection"]["kind"] == "pca"
    # The shipped head is exactly the PCA of the fine-tuned pooled features of the training images.
    data = EvalImages(trainer.train_items, cfg.data.image_size)
    feats = l2_normalise(pooled_features(trainer.model, data, torch.device("cpu")))
    ref = pca_projection(feats, 16, whiten_power=0.5)
    x = torch.stack([data[i][0] for i in range(4)])
    torch.testing.assert_close(trainer.model(x), l2_normalise(feats[:4] @ ref.weight.T + ref.bias),
                               atol=1e-4, rtol=0)
    _, cfg_saved = load_model(tmp_path / "pca" / "checkpoints" / "last.safetensors")
    assert cfg_saved["normalise_pooled"] is True
    summary = json.loads((tmp_path / "pca" / "summary.json").read_text())
    assert summary["head"]["init"]["kind"] == "pca"
    assert summary["final"]["recall@1"] == records[-1]["recall@1"]


def test_projection_to_a_wider_embedding_than_trained(tiny_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_manifest, tmp_path, name="wide", **{
        "head.projection": "pca", "head.projection_dim": 24, "optim.epochs": 1}))
    Trainer(cfg, progress=False).train()
    model, mcfg = load_model(tmp_path / "wide" / "checkpoints" / "last.safetensors")
    assert mcfg["embedding_dim"] == 24 and tuple(model.embed.weight.shape) == (24, 32)
    assert tuple(model(torch.rand(2, 3, 64, 64)).shape) == (2, 24)


def test_unknown_head_option_is_a_config_error(tiny_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_manifest, tmp_path, name="bad", **{"head.projection": "ica"}))
    with pytest.raises(ConfigError, match="head.projection: unknown 'ica'"):
        Trainer(cfg, progress=False)
