r"""CtxYNet-style candidate-conditioned query attention: a server-side re-ranker of the top-K.

Our reading of the CtxYNet part of paper 003 (the full text is not available to us; docs/method.md
section 4): the query photo is looked at *in the context of a candidate* -- its feature map is
re-pooled with an attention that the candidate steers, so a photo of a striped mug attends to the
stripes when compared with a striped candidate. Because the query's vector then depends on the
candidate, there is no single query vector to search an index with: this is a **re-ranker of the
short list that the index returned, never an index**, and it runs on a server (it needs the
PyTorch model and the query's feature map, not just the phone's embedding).

For a query feature map F_q (C x h x w, the base model's backbone) and a candidate c with its
index embedding e_c (D, unit vector):

    s_c = b(F_q) + u^T tanh(V_f F_q + V_c e_c)          (one logit per position)
    a_c = softmax over positions of s_c,   q_c = normalize(embed(sum_pos a_c F_q))
    ctx(q, c) = q_c . e_c
    score(q, c) = (1 - mix) * (index cosine) + mix * ctx(q, c)

b(F_q) is the base model's own attention logits: 0 (average pooling) for the plain embedding net
(with ``pooling: avg``), the tag-free prior's logits for :class:`.tag_attention.TagAttentionNet`.
``u`` starts at zero, so before :func:`fit_ctx_reranker` ctx(q, c) equals the index cosine and
re-ranking leaves the order unchanged. The base model (backbone, ``embed``) stays frozen; only
V_f, V_c, u are learnt, on the training split: every phone photo of a P x K batch scores every
shop image of the batch, loss = -log sum_{positives} softmax(ctx / T) (T = 0.05).

SDK integration (server side; the SDK engineer owns the call site): search the gallery index with
the phone model as usual, take the top K (e.g. 20) ids and their index embeddings, then
``CtxReranker.rerank(query_x01, candidate_embeddings, index_scores)`` returns the new order.
:func:`save_reranker` / :func:`load_reranker` store the fitted attention (safetensors, with the base
checkpoint's embedding-space id, so a re-ranker is never applied to another model's index).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from deepproduct.sdk.metrics import recall_from_ranking

from .embedding_net import EmbeddingNet


class CtxReranker(nn.Module):
    """Candidate-conditioned attention over a frozen base model's query feature map."""

    def __init__(self, model: EmbeddingNet, hidden: int = 128, mix: float = 0.5, temperature: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"ctx re-ranker: mix must be in [0, 1], got {mix}")
        self.model = model.eval().requires_grad_(False)
        c, d = model.embed.in_features, model.embedding_dim
        self.att_feat = nn.Conv2d(c, hidden, 1)  # V_f
        self.att_cand = nn.Linear(d, hidden, bias=False)  # V_c
        self.att_score = nn.Linear(hidden, 1, bias=False)  # u
        nn.init.zeros_(self.att_score.weight)  # ctx == index cosine until fitted
        self.mix, self.temperature = float(mix), float(temperature)

    def train(self, mode: bool = True) -> CtxReranker:
        super().train(mode)
        self.model.eval()  # the base model never leaves eval mode (frozen BN statistics)
        return self

    @torch.no_grad()
    def feature_maps(self, x01: torch.Tensor) -> torch.Tensor:
        return self.model.features(self.model.normalise(x01))

    def base_logits(self, fmap: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "attention_logits"):
            with torch.no_grad():
                return self.model.attention_logits(fmap, None)
        return fmap.new_zeros(fmap.shape[0], fmap.shape[2] * fmap.shape[3])

    @torch.no_grad()
    def query_embedding(self, fmap: torch.Tensor) -> torch.Tensor:
        """The base model's own (index-side) embedding of a feature map."""
        a = torch.softmax(self.base_logits(fmap), dim=1)
        return F.normalize(self.model.embed((fmap.flatten(2) * a[:, None, :]).sum(-1)), dim=-1)

    def ctx_scores(self, fmap: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """ctx(q, c) for Q query feature maps and candidates (K x D shared, or Q x K x D) -> Q x K."""
        if candidates.ndim == 2:
            candidates = candidates[None].expand(fmap.shape[0], -1, -1)
        f = self.att_feat(fmap).flatten(2)  # Q x H x P
        v = self.att_cand(candidates)  # Q x K x H
        h = torch.tanh(f[:, None] + v[..., None])  # Q x K x H x P
        logits = self.att_score(h.transpose(2, 3)).squeeze(-1) + self.base_logits(fmap)[:, None, :]
        a = torch.softmax(logits, dim=-1)  # Q x K x P
        pooled = torch.einsum("qkp,qcp->qkc", a, fmap.flatten(2))
        q = F.normalize(self.model.embed(pooled), dim=-1)
        return (q * candidates).sum(-1)

    @torch.no_grad()
    def rerank(self, query_x01: torch.Tensor, candidates: torch.Tensor,
               index_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-rank each query's K candidates (Q x K x D, index scores Q x K): (order Q x K, scores)."""
        fmap = self.feature_maps(query_x01)
        score = (1 - self.mix) * index_scores + self.mix * self.ctx_scores(fmap, candidates)
        order = score.argsort(dim=1, descending=True)
        return order, score.gather(1, order)

    def loss(self, fmap: torch.Tensor, candidates: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """-log sum_pos softmax(ctx / T) per query (mean); ``positive`` Q x K bool."""
        logits = self.ctx_scores(fmap, candidates) / self.temperature
        pos = logits.masked_fill(~positive, float("-inf"))
        return (torch.logsumexp(logits, 1) - torch.logsumexp(pos, 1)).mean()


@dataclass
class CachedSplit:
    """Feature maps and index embeddings of a split (eval preprocessing), for fitting and scoring."""

    fmaps: torch.Tensor
    embeddings: torch.Tensor
    labels: np.ndarray
    domains: np.ndarray


@torch.no_grad()
def cache_split(reranker: CtxReranker, manifest: Any, split: str, image_size: int, device: torch.device,
                batch_size: int = 64) -> CachedSplit:
    from ..data.product_dataset import EvalImages, items_for_split

    items, _ = items_for_split(manifest, split)
    loader = DataLoader(EvalImages(items, image_size), batch_size=batch_size, shuffle=False, num_workers=0)
    fmaps, embs = [], []
    for x, _, _ in loader:
        fmap = reranker.feature_maps(x.to(device))
        fmaps.append(fmap.cpu())
        embs.append(reranker.query_embedding(fmap).cpu())
    return CachedSplit(torch.cat(fmaps), torch.cat(embs), np.array([it.label for it in items]),
                       np.array([it.domain for it in items]))


def fit_ctx_reranker(reranker: CtxReranker, train: CachedSplit, steps: int = 200, lr: float = 1e-3,
                     products_per_batch: int = 16, images_per_product: int = 4, seed: int = 0,
                     device: torch.device | str = "cpu") -> list[float]:
    """Fit V_f, V_c, u on cached training feature maps; returns the loss per step."""
    from ..data.sampler import PKBatchSampler

    counts = np.bincount(train.labels)
    p = min(products_per_batch, int((counts >= 2).sum()))  # small data sets: fewer products per batch
    sampler = PKBatchSampler(train.labels, train.domains, p, images_per_product, seed=seed, batches_per_epoch=steps)
    params = [p for n, p in reranker.named_parameters() if not n.startswith("model.")]
    opt = torch.optim.Adam(params, lr=lr)
    reranker.train()
    torch.manual_seed(seed)
    history = []
    labels = torch.as_tensor(train.labels)
    domains = torch.as_tensor(train.domains)
    for batch in sampler:
        idx = torch.tensor(batch)
        q = idx[domains[idx] == 1] if bool((domains[idx] == 1).any()) else idx
        g = idx[domains[idx] == 0] if bool((domains[idx] == 0).any()) else idx
        positive = labels[q][:, None] == labels[g][None, :]
        keep = positive.any(1)
        if not bool(keep.any()):
            continue
        q, positive = q[keep], positive[keep]
        loss = reranker.loss(train.fmaps[q].to(device), train.embeddings[g].to(device), positive.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    reranker.eval()
    return history


def ranked_metrics(ranked_labels: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray,
                   ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K and MAP@R from ranked gallery labels (Q x G, best first)."""
    hits = ranked_labels == query_labels[:, None]
    r = (gallery_labels[None, :] == query_labels[:, None]).sum(1)
    ok = r > 0
    out = recall_from_ranking(ranked_labels[ok], query_labels[ok], ks)
    aps = []
    for row, n_rel in zip(hits[ok], r[ok], strict=True):
        top = row[:n_rel].astype(float)
        precision = np.cumsum(row[:n_rel]) / np.arange(1, n_rel + 1)
        aps.append(float((top * precision).sum() / n_rel))
    out["map@r"] = float(np.mean(aps)) if aps else float("nan")
    return out


@torch.no_grad()
def rerank_metrics(reranker: CtxReranker, test: CachedSplit, top_k: int = 20,
                   device: torch.device | str = "cpu", batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Consumer-to-shop metrics of the index ranking and of the top-K re-ranked by ``reranker``."""
    queries, gallery = np.flatnonzero(test.domains == 1), np.flatnonzero(test.domains == 0)
    q_emb, g_emb = test.embeddings[queries], test.embeddings[gallery]
    q_lab, g_lab = test.labels[queries], test.labels[gallery]
    sims = q_emb @ g_emb.T
    order = sims.argsort(dim=1, descending=True)
    k = min(top_k, len(gallery))
    reranked = order.clone()
    for start in range(0, len(queries), batch_size):
        sl = slice(start, start + batch_size)
        top = order[sl, :k]
        cand = g_emb[top].to(device)
        fmap = test.fmaps[queries[sl]].to(device)
        score = (1 - reranker.mix) * sims[sl].gather(1, top).to(device) \
            + reranker.mix * reranker.ctx_scores(fmap, cand)
        new = score.argsort(dim=1, descending=True).cpu()
        reranked[sl, :k] = top.gather(1, new)
    return {"index": ranked_metrics(g_lab[order.numpy()], q_lab, g_lab),
            "reranked": ranked_metrics(g_lab[reranked.numpy()], q_lab, g_lab)}


def save_reranker(path: str | Path, reranker: CtxReranker) -> Path:
    """The re-ranker's own weights (not the base model's) and settings, tied to the base model."""
    from safetensors.torch import save_file

    from ..atomic import atomic_path
    from ..checkpoint import embedding_space_id

    state = {k: v.detach().contiguous().cpu() for k, v in reranker.state_dict().items() if not k.startswith("model.")}
    meta = {"format": "deepproduct-ctx-reranker", "embedding_space_id": embedding_space_id(reranker.model),
            "config": json.dumps({"hidden": reranker.att_feat.out_channels, "mix": reranker.mix,
                                  "temperature": reranker.temperature})}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def load_reranker(path: str | Path, model: EmbeddingNet) -> CtxReranker:
    """Rebuild a saved re-ranker on ``model`` (which must be the base model it was fitted on)."""
    from safetensors.torch import load_file, safe_open

    from ..checkpoint import CheckpointError, embedding_space_id

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "deepproduct-ctx-reranker":
        raise CheckpointError(f"{path}: not a DeepProduct CtxYNet re-ranker")
    if meta.get("embedding_space_id") != embedding_space_id(model):
        raise CheckpointError(f"{path}: fitted on another model (embedding space "
                              f"{meta.get('embedding_space_id', '?')[:12]}...); refit it on this checkpoint")
    cfg = json.loads(meta["config"])
    reranker = CtxReranker(model, hidden=int(cfg["hidden"]), mix=float(cfg["mix"]),
                           temperature=float(cfg["temperature"]))
    missing, unexpected = reranker.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or any(not k.startswith("model.") for k in missing):
        raise CheckpointError(f"{path}: weights do not match (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return reranker.eval()
