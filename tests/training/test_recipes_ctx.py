"""The CtxYNet-style re-ranker (server side): neutral before fitting, learns, and its ranked metrics
agree with the trainer's evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepproduct.sdk.dataset_manifest import read_dataset_manifest
from deepproduct.training.eval.metrics import map_at_r, recall_at_k
from deepproduct.training.models import build_embedding_net
from deepproduct.training.models.ctx_rerank import (
    CtxReranker,
    cache_split,
    fit_ctx_reranker,
    ranked_metrics,
    rerank_metrics,
)
from deepproduct.training.models.registry import create_backbone
from deepproduct.training.models.tag_attention import TagAttentionNet


@pytest.fixture(scope="module")
def reranker() -> CtxReranker:
    torch.manual_seed(0)
    return CtxReranker(build_embedding_net("tiny_cnn", 16, pretrained=False), hidden=8)


def test_unfitted_reranker_is_neutral(reranker) -> None:
    x = torch.rand(3, 3, 64, 64)
    fmap = reranker.feature_maps(x)
    with torch.no_grad():
        q = reranker.query_embedding(fmap)
        torch.testing.assert_close(q, reranker.model(x))
        cands = torch.nn.functional.normalize(torch.randn(3, 5, 16), dim=-1)
        ctx = reranker.ctx_scores(fmap, cands)
        torch.testing.assert_close(ctx, torch.einsum("qd,qkd->qk", q, cands))
        index = torch.einsum("qd,qkd->qk", q, cands)
        order, _ = reranker.rerank(x, cands, index)
    torch.testing.assert_close(order, index.argsort(dim=1, descending=True))


def test_tag_attention_base_uses_its_prior_attention() -> None:
    torch.manual_seed(0)
    net = TagAttentionNet(create_backbone("tiny_cnn", pretrained=False), 16, tag_vocab=["a", "b"])
    torch.nn.init.normal_(net.att_score.weight, std=0.5)
    rr = CtxReranker(net, hidden=8)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(rr.query_embedding(rr.feature_maps(x)), net(x))


def test_fit_lowers_the_loss_and_metrics_agree(reranker, tiny_manifest) -> None:
    manifest = read_dataset_manifest(tiny_manifest)
    train = cache_split(reranker, manifest, "train", 64, torch.device("cpu"))
    test = cache_split(reranker, manifest, "test", 64, torch.device("cpu"))
    # the index ranking's metrics equal the trainer's evaluation functions on the same embeddings
    q, g = test.domains == 1, test.domains == 0
    ref = recall_at_k(test.embeddings[q], test.labels[q], test.embeddings[g], test.labels[g], (1, 5, 10))
    ref.update(map_at_r(test.embeddings[q], test.labels[q], test.embeddings[g], test.labels[g]))
    scores = rerank_metrics(reranker, test, top_k=5)
    for key in ("recall@1", "recall@5", "recall@10", "map@r"):
        assert scores["index"][key] == pytest.approx(ref[key], abs=1e-6), key
    assert scores["reranked"] == scores["index"]  # neutral before fitting
    # fitting runs on P x K batches of the cached training maps
    history = fit_ctx_reranker(reranker, train, steps=5, lr=1e-3, products_per_batch=4)
    assert len(history) == 5 and all(np.isfinite(history))
    # and one optimiser step on a fixed batch lowers the re-ranker's loss
    users, shops = np.flatnonzero(train.domains == 1)[:8], np.flatnonzero(train.domains == 0)
    positive = torch.as_tensor(train.labels[users][:, None] == train.labels[shops][None, :])
    params = [p for n, p in reranker.named_parameters() if not n.startswith("model.")]
    opt = torch.optim.SGD(params, lr=0.5)
    before = reranker.loss(train.fmaps[users], train.embeddings[shops], positive)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = reranker.loss(train.fmaps[users], train.embeddings[shops], positive)
    assert after.item() < before.item()


def test_ranked_metrics_by_hand() -> None:
    # query label 0; gallery labels [0, 1, 0]; ranking 1, 0, 2 -> hits [F, T, T], R = 2
    # Recall@1 = 0, Recall@5 = 1; AP@R = (1/2) * (0 + 1/2) = 0.25
    m = ranked_metrics(np.array([[1, 0, 0]]), np.array([0]), np.array([0, 1, 0]))
    assert m == {"recall@1": 0.0, "recall@5": 1.0, "recall@10": 1.0, "map@r": 0.25}


def test_save_and_load_are_tied_to_the_base_model(tmp_path) -> None:
    from deepproduct.training.checkpoint import CheckpointError
    from deepproduct.training.models.ctx_rerank import load_reranker, save_reranker

    torch.manual_seed(0)
    base = build_embedding_net("tiny_cnn", 16, pretrained=False)
    rr = CtxReranker(base, hidden=8, mix=0.3)
    torch.nn.init.normal_(rr.att_score.weight)
    path = save_reranker(tmp_path / "ctx.safetensors", rr)
    back = load_reranker(path, base)
    assert back.mix == 0.3
    fmap = rr.feature_maps(torch.rand(2, 3, 64, 64))
    cands = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(back.ctx_scores(fmap, cands), rr.ctx_scores(fmap, cands))
    with pytest.raises(CheckpointError, match="fitted on another model"):
        load_reranker(path, build_embedding_net("tiny_cnn", 16, pretrained=False))
