"""What export tests build by hand around a tiny model: a quick ONNX file and the model's ModelInfo."""

from __future__ import annotations

import warnings
from pathlib import Path


def legacy_onnx_export(model, path: str | Path, size: int, batch: int = 1) -> Path:
    """fp32 ONNX via the TorchScript exporter (0.3 s instead of 5 s for dynamo on a tiny graph):
    input ``image`` NCHW, output ``embedding``, dynamic batch, opset 17, traced on ``batch`` random images."""
    import torch

    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, but 10x faster here
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(batch, 3, size, size),), str(path), dynamo=False,
                          input_names=["image"], output_names=["embedding"], opset_version=17,
                          dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}})
    return Path(path)


def model_info_of(model, name: str = "tiny", version: str = "1", preprocessing=None):
    """The exporter's ModelInfo of an ``embedding_net`` (its normalisation, weights' space id)."""
    from deepproduct.export.model_info import ModelInfo
    from deepproduct.sdk.preprocessing import PreprocessingSpec
    from deepproduct.training.checkpoint import embedding_space_id

    mean, std = model.normalisation
    size = model.input_size
    return ModelInfo(name=name, version=version, backbone=model.backbone_name, embedding_dim=model.embedding_dim,
                     input_size=size, embedding_space_id=embedding_space_id(model), mean=tuple(mean),
                     std=tuple(std), preprocessing=preprocessing or PreprocessingSpec.for_input_size(size))
