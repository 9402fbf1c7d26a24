"""Architectures beyond the plain embedding net, selected by ``model.architecture`` in the config.

Each registers itself with ``register_architecture(name, build, rebuild)``
(:mod:`.registry`) like ``embedding_net`` does: ``build(cfg)`` for training, ``rebuild`` from
the checkpoint's ``model_config`` alone, so ``load_model`` (and so ``dp-export``) reconstructs it.
``model.options`` holds the architecture's own settings (unknown keys are errors that name them).

Registered here: ``tag_attention`` (TagYNet attention pooling, :mod:`.tag_attention`).
"""

from __future__ import annotations

import difflib
from typing import Any

from deepproduct.sdk.dataset_manifest import read_dataset_manifest

from ..config import ConfigError, TrainConfig
from ..data.product_dataset import DataError, items_for_split
from .embedding_net import EmbeddingNet
from .registry import create_backbone, get_architecture, list_architectures, register_architecture
from .tag_attention import ARCHITECTURE as TAG_ATTENTION
from .tag_attention import TagAttentionNet, product_tag_lists, tag_vocabulary

TAG_OPTIONS = ("tag_dim", "hidden", "tag_dropout")


def _check_options(arch: str, options: dict, allowed: tuple[str, ...]) -> dict:
    for key in options:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean model.options.{near[0]}?)" if near else ""
            raise ConfigError(f"unknown option model.options.{key} for architecture {arch!r}{hint}; "
                              f"its options: {', '.join(allowed)}")
    return dict(options)


def build_tag_attention(cfg: TrainConfig) -> TagAttentionNet:
    """TagYNet attention net; the tag vocabulary and per-product tags come from the manifest."""
    options = _check_options(TAG_ATTENTION, cfg.model.options or {}, TAG_OPTIONS)
    manifest = read_dataset_manifest(cfg.data.manifest)
    vocab = tag_vocabulary(manifest)
    if not manifest.has_tags or not vocab:
        raise DataError(f"model.architecture=tag_attention needs catalogue tags in the manifest column 'tags' "
                        f"(tags joined with '|' on the training split's shop images); {manifest.csv_path} "
                        f"has no tags there. Use model.architecture=embedding_net for data without tags.")
    backbone = create_backbone(cfg.model.backbone, pretrained=cfg.model.pretrained)
    model = TagAttentionNet(backbone, cfg.model.embedding_dim, cfg.model.pooling, tag_vocab=vocab, **options)
    _, products = items_for_split(manifest, "train")
    model.set_product_tags(product_tag_lists(manifest, products))
    return model


def rebuild_tag_attention(cfg: dict[str, Any], pooling: str) -> TagAttentionNet:
    """From a checkpoint's model config (random weights; ``load_model`` loads them next)."""
    options = {k: cfg[k] for k in TAG_OPTIONS if k in cfg}
    return TagAttentionNet(create_backbone(cfg["backbone"], pretrained=False), int(cfg["embedding_dim"]),
                           pooling, tag_vocab=cfg.get("tag_vocab", []), **options)


register_architecture(TAG_ATTENTION, build=build_tag_attention, rebuild=rebuild_tag_attention)


def build(cfg: TrainConfig) -> EmbeddingNet:
    """The model for ``cfg.model.architecture``; unknown -> ConfigError with a did-you-mean hint."""
    return get_architecture(cfg.model.architecture, ConfigError).build(cfg)


__all__ = ["build", "build_tag_attention", "list_architectures", "rebuild_tag_attention"]
