"""Backbones and architectures (registries, :mod:`.registry`) and the embedding network.

Importing the package registers the built-in backbones and architectures, as importing
:mod:`deepproduct.training.losses` registers the losses.
"""

from . import architectures, backbones  # noqa: F401  (import = register)
from .embedding_net import EmbeddingNet, TrainOutputs, build_embedding_net
from .registry import (
    Architecture,
    Backbone,
    create_backbone,
    get_architecture,
    list_architectures,
    list_backbones,
    register_architecture,
    register_backbone,
)

__all__ = ["Architecture", "Backbone", "EmbeddingNet", "TrainOutputs", "build_embedding_net", "create_backbone",
           "get_architecture", "list_architectures", "list_backbones", "register_architecture",
           "register_backbone"]
