r"""Tag-guided spatial attention pooling (TagYNet, docs/method.md section 4; paper 003) -- our reading.

The paper's full text is not available to us; this is our reading of its abstract (docs/method.md
section 4 says the same). Catalogue images come with product tags that say what matters in the
picture (``pattern:stripes``, ``text:ACME``); phone photos come with nothing. So the pooling of the
last feature map F (C x h x w) is an attention that the tags can steer:

    a = softmax over the h*w positions of  w^T tanh(W_f F + W_t t),     pooled = sum_pos a * F,

then the usual linear head and L2 normalisation. t is the mean of learned tag embeddings of the
product's tags (a bag of tag ids) for a catalogue (shop) image, and a *learned tag-free prior* t_0
for a phone photo, which has no tags.

Why the prior is what gets exported: the phone model sees only an image, so its ``forward(x01)``
is image -> embedding with t = t_0 (W_t t_0 folds into a constant), a plain graph that
``dp-export`` converts unchanged (input ``image`` NCHW in [0, 1], output ``embedding``). The tag
branch (:meth:`TagAttentionNet.embed_catalogue`) serves index building on a server, where the
catalogue's tags are at hand; an index built with the phone model (``forward``) is tag-free too.
During training the tags of a shop image are dropped with probability ``tag_dropout`` so the prior
also learns catalogue images (the tag-free index path). ``w`` starts at zero: uniform attention,
i.e. average pooling, so training starts from the plain network's pooled features.

The ImageNet logits of the multitask branch (and the ``off_the_shelf`` evaluation) use the plain
global pooling that the classifier was trained with.

``tags`` come from the manifest's ``tags`` column; the vocabulary is the training split's shop
tags, stored in the checkpoint's model config so :func:`deepproduct.training.checkpoint.load_model`
rebuilds the same network. Unknown tags are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .embedding_net import EmbeddingNet, TrainOutputs
from .pooling import l2_normalise
from .registry import Backbone

ARCHITECTURE = "tag_attention"


class TagAttentionNet(EmbeddingNet):
    """Embedding net with TagYNet attention pooling; ``forward`` is the tag-free phone model."""

    uses_batch_context = True  # the trainer passes labels and domains to forward_train

    def __init__(self, backbone: Backbone, embedding_dim: int = 128, pooling: str = "avg",
                 tag_vocab: Sequence[str] = (), tag_dim: int = 64, hidden: int = 128,
                 tag_dropout: float = 0.3) -> None:
        super().__init__(backbone, embedding_dim, pooling)
        if not 0.0 <= tag_dropout < 1.0:
            raise ValueError(f"tag_attention: tag_dropout must be in [0, 1), got {tag_dropout}")
        self.tag_vocab = list(tag_vocab)
        self._tag_index = {t: i + 1 for i, t in enumerate(self.tag_vocab)}  # 0 = padding
        self.tag_dropout = float(tag_dropout)
        c = backbone.num_features
        self.att_feat = nn.Conv2d(c, hidden, 1)  # W_f (its bias is the attention's offset)
        self.att_tag = nn.Linear(tag_dim, hidden, bias=False)  # W_t
        self.tag_embed = nn.EmbeddingBag(len(self.tag_vocab) + 1, tag_dim, mode="mean", padding_idx=0)
        self.tag_prior = nn.Parameter(torch.zeros(tag_dim))  # t_0, the tag-free prior
        self.att_score = nn.Conv2d(hidden, 1, 1, bias=False)  # w
        nn.init.zeros_(self.att_score.weight)  # uniform attention = average pooling at the start
        # per training product (label): padded tag ids; set by the architecture builder, not saved
        self.register_buffer("product_tags", torch.zeros(0, 1, dtype=torch.long), persistent=False)
        self.extra_config = {"architecture": ARCHITECTURE, "tag_vocab": self.tag_vocab, "tag_dim": tag_dim,
                             "hidden": hidden, "tag_dropout": self.tag_dropout}

    # -- tags -------------------------------------------------------------------------------------
    def encode_tags(self, tag_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """Padded tag ids (N x T, 0 = padding); unknown tags are dropped."""
        ids = [[self._tag_index[t] for t in tags if t in self._tag_index] for tags in tag_lists]
        width = max([1, *(len(i) for i in ids)])
        out = torch.zeros(len(ids), width, dtype=torch.long)
        for row, i in enumerate(ids):
            out[row, :len(i)] = torch.tensor(i, dtype=torch.long)
        return out.to(self.tag_prior.device)

    def set_product_tags(self, tag_lists: Sequence[Sequence[str]]) -> None:
        """Tags of the training products, in label order (used by :meth:`forward_train`)."""
        self.product_tags = self.encode_tags(tag_lists)

    def _tag_vectors(self, tag_ids: torch.Tensor | None, n: int) -> torch.Tensor:
        """t per image: the mean tag embedding, or the prior where an image has no (known) tag."""
        prior = self.tag_prior[None, :].expand(n, -1)
        if tag_ids is None:
            return prior
        has = (tag_ids > 0).any(1, keepdim=True)
        return torch.where(has, self.tag_embed(tag_ids), prior)

    # -- the network ------------------------------------------------------------------------------
    def attention_logits(self, fmap: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        """w^T tanh(W_f F + W_t t) per position (N x h*w); ``t=None``: the tag-free prior."""
        if t is None:  # the exported path: W_t t_0 is one constant vector
            bias = self.att_tag(self.tag_prior)[None, :, None, None]
        else:
            bias = self.att_tag(t)[:, :, None, None]
        return self.att_score(torch.tanh(self.att_feat(fmap) + bias)).flatten(1)

    def attend(self, fmap: torch.Tensor, t: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention-pooled features (N x C) and the attention map (N x h*w)."""
        a = torch.softmax(self.attention_logits(fmap, t), dim=1)
        pooled = (fmap.flatten(2) * a[:, None, :]).sum(-1)
        return pooled, a

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        """The phone model: image -> unit embedding through the tag-free prior (what is exported)."""
        fmap = self.features(self.normalise(x01))
        pooled, _ = self.attend(fmap, None)
        return l2_normalise(self.embed(pooled))

    def embed_catalogue(self, x01: torch.Tensor, tag_lists: Sequence[Sequence[str]] | None) -> torch.Tensor:
        """Server-side index building: catalogue images with their tags (``None``: tag-free)."""
        fmap = self.features(self.normalise(x01))
        t = None if tag_lists is None else self._tag_vectors(self.encode_tags(tag_lists), len(x01))
        pooled, _ = self.attend(fmap, t)
        return l2_normalise(self.embed(pooled))

    def forward_train(self, x01: torch.Tensor, labels: torch.Tensor | None = None,
                      domains: torch.Tensor | None = None) -> TrainOutputs:
        fmap = self.features(self.normalise(x01))
        avg = self.pool(fmap)
        tag_ids = None
        if labels is not None and len(self.product_tags) > 0:
            tag_ids = self.product_tags[labels]
            use = torch.ones(len(labels), dtype=torch.bool, device=tag_ids.device)
            if domains is not None:
                use &= domains == 0  # phone photos carry no tags
            if self.training and self.tag_dropout > 0:
                use &= torch.rand(len(labels), device=tag_ids.device) >= self.tag_dropout
            tag_ids = tag_ids * use[:, None]
        pooled, _ = self.attend(fmap, self._tag_vectors(tag_ids, len(x01)))
        logits = self.classifier(avg) if self.classifier is not None else None
        return TrainOutputs(embedding=l2_normalise(self.embed(pooled)), pooled=avg, logits=logits,
                            feature_map=fmap)


def tag_vocabulary(manifest: Any, split: str = "train") -> list[str]:
    """Sorted tags of the split's shop images."""
    return sorted({t for r in manifest.select(split=split, domain="shop") for t in r.tags})


def product_tag_lists(manifest: Any, products: Sequence[str]) -> list[list[str]]:
    """Per product (in the given order): the union of its shop images' tags, first-seen order."""
    tags: dict[str, dict[str, None]] = {p: {} for p in products}
    for r in manifest.rows:
        if r.domain == "shop" and r.product_id in tags:
            for t in r.tags:
                tags[r.product_id][t] = None
    return [list(tags[p]) for p in products]
