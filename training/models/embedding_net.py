"""The embedding network: backbone -> pooling -> linear to D -> L2 normalisation.

``forward`` takes RGB in [0, 1] and returns the unit embedding: that is exactly the exported
graph (normalisation folded in), so export needs no wrapper. ``forward_train`` also returns the
pooled features and the ImageNet logits of the kept classifier for the multitask branch.
Registered as the architecture ``embedding_net`` (the default ``model.architecture``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .pooling import create_pooling, l2_normalise
from .registry import Backbone, create_backbone, register_architecture

if TYPE_CHECKING:
    from ..config import TrainConfig


@dataclass
class TrainOutputs:
    embedding: torch.Tensor  # N x D unit vectors
    pooled: torch.Tensor  # N x C
    logits: torch.Tensor | None  # N x 1000 ImageNet logits, when the backbone has a classifier
    feature_map: torch.Tensor  # N x C x h x w


class EmbeddingNet(nn.Module):
    #: True: the trainer calls ``forward_train(x, labels=..., domains=...)`` (tag attention).
    uses_batch_context = False

    def __init__(self, backbone: Backbone, embedding_dim: int = 128, pooling: str = "avg",
                 normalise_pooled: bool = False) -> None:
        super().__init__()
        # True: pooled features are L2-normalised before the head (a PCA head fitted on unit
        # pooled features transfers better; docs/transfer-recipe.md). Part of the exported graph.
        self.normalise_pooled = bool(normalise_pooled)
        # Recorded in the checkpoint's model_config (checkpoint.model_config_of), so a rebuild matches.
        self.extra_config: dict[str, Any] = {"normalise_pooled": True} if self.normalise_pooled else {}
        self.backbone_name = backbone.name
        self.features = backbone.features
        self.pooling_name = pooling
        self.pool = create_pooling(pooling)
        self.embed = nn.Linear(backbone.num_features, embedding_dim)
        self.classifier = backbone.classifier
        self.embedding_dim = embedding_dim
        self.input_size = backbone.input_size
        self.pretrained_source = backbone.pretrained
        self.pretrained_cfg = backbone.pretrained_cfg
        self.stages = backbone.stages
        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)

    @property
    def normalisation(self) -> tuple[list[float], list[float]]:
        return self.mean.flatten().tolist(), self.std.flatten().tolist()

    def normalise(self, x01: torch.Tensor) -> torch.Tensor:
        return (x01 - self.mean) / self.std

    def pooled_features(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.features(self.normalise(x01))
        return fmap, self.pool(fmap)

    def head_input(self, pooled: torch.Tensor) -> torch.Tensor:
        """What the linear head sees: the pooled features, unit-normalised if ``normalise_pooled``."""
        return l2_normalise(pooled) if self.normalise_pooled else pooled

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        _, pooled = self.pooled_features(x01)
        return l2_normalise(self.embed(self.head_input(pooled)))

    def forward_train(self, x01: torch.Tensor) -> TrainOutputs:
        fmap, pooled = self.pooled_features(x01)
        logits = self.classifier(pooled) if self.classifier is not None else None
        return TrainOutputs(embedding=l2_normalise(self.embed(self.head_input(pooled))), pooled=pooled, logits=logits,
                            feature_map=fmap)

    def freeze_stages(self, n: int) -> None:
        """Freeze the first ``n`` backbone stages (weights and BN statistics): cheaper CPU steps."""
        for stage in self.stages[:n]:
            for p in stage.parameters():
                p.requires_grad_(False)


def build_embedding_net(backbone: str = "efficientnet_lite0", embedding_dim: int = 128,
                        pooling: str = "avg", pretrained: bool | str = True,
                        normalise_pooled: bool = False) -> EmbeddingNet:
    return EmbeddingNet(create_backbone(backbone, pretrained=pretrained), embedding_dim, pooling,
                        normalise_pooled)


def _build_for_training(cfg: TrainConfig) -> EmbeddingNet:
    m = cfg.model
    return build_embedding_net(m.backbone, m.embedding_dim, m.pooling, pretrained=m.pretrained,
                               normalise_pooled=cfg.head.normalise_pooled)


def _rebuild(model_config: dict[str, Any], pooling: str) -> EmbeddingNet:
    return build_embedding_net(model_config["backbone"], int(model_config["embedding_dim"]), pooling,
                               pretrained=False, normalise_pooled=bool(model_config.get("normalise_pooled", False)))


register_architecture("embedding_net", build=_build_for_training, rebuild=_rebuild)
