"""Backbones (a registry) and the embedding network built on them."""

from . import backbones  # noqa: F401  (registers the backbones)
from .embedding_net import EmbeddingNet, TrainOutputs, build_embedding_net
from .registry import Backbone, create_backbone, list_backbones, register_backbone

__all__ = ["Backbone", "EmbeddingNet", "TrainOutputs", "build_embedding_net", "create_backbone",
           "list_backbones", "register_backbone"]
