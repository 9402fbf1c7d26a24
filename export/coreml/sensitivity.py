"""Which weights Core ML compression must leave in fp16: a per-layer sensitivity analysis.

Why: compressing every weight tensor of EfficientNet-Lite0 per-channel to int8 gives mean cosine
~0.996 against PyTorch, 6-bit palettes ~0.92 (measured, docs/export.md) -- below the 0.999 / 0.99
thresholds -- while a handful of small, sensitive tensors (the stem, the first blocks' depthwise
and projection convolutions) cause most of that loss and hold a few percent of the bytes. So each
candidate tensor is compressed alone in PyTorch (a simulation: per-channel symmetric uniform
quantisation with the target bit width; for palettes that is a pessimistic stand-in for k-means)
and the damage (1 - mean cosine on a few calibration images) measured. Damages add roughly
linearly for small errors, so tensors are kept in fp16, most damage per weight first, until the
predicted total is within half the threshold's budget. The selection maps onto the converted ML
Program's weight constants by execution order and shape (checked), and is recorded in the manifest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

WEIGHT_THRESHOLD = 512  # coremltools' default: smaller tensors are never compressed


@dataclass
class LayerDamage:
    index: int  # position among the weight layers in execution order
    name: str
    numel: int
    damage: float  # 1 - mean cosine with only this layer compressed


def weight_layers_in_order(model: torch.nn.Module, example: torch.Tensor) -> list[tuple[str, torch.nn.Module]]:
    """Conv2d / Linear modules in the order the forward pass calls them (once each)."""
    order: list[tuple[str, torch.nn.Module]] = []
    names = {id(m): n for n, m in model.named_modules()}
    hooks = []
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            hooks.append(module.register_forward_hook(
                lambda mod, _i, _o: order.append((names[id(mod)], mod)) if all(m is not mod for _, m in order) else None))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return order


def _quantise(weight: torch.Tensor, bits: int) -> torch.Tensor:
    flat = weight.reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(dim=1, keepdim=True) / (2 ** (bits - 1) - 1)).clamp_min(1e-12)
    return (torch.round(flat / scale) * scale).reshape(weight.shape)


def measure(model: torch.nn.Module, images: torch.Tensor, bits: int) -> list[LayerDamage]:
    layers = weight_layers_in_order(model, images[:1])
    with torch.no_grad():
        reference = model(images)
    out: list[LayerDamage] = []
    for index, (name, module) in enumerate(layers):
        if module.weight.numel() < WEIGHT_THRESHOLD:
            continue
        original = module.weight.data.clone()
        try:
            module.weight.data = _quantise(original, bits)
            with torch.no_grad():
                cos = torch.nn.functional.cosine_similarity(model(images), reference).mean().item()
        finally:
            module.weight.data = original
        out.append(LayerDamage(index, name, module.weight.numel(), max(0.0, 1.0 - cos)))
    return out


def choose_protected(damages: list[LayerDamage], budget: float) -> list[LayerDamage]:
    """Keep the most damaging-per-weight layers in fp16 until the rest sum to <= budget."""
    remaining = sum(d.damage for d in damages)
    protected: list[LayerDamage] = []
    for d in sorted(damages, key=lambda d: d.damage / d.numel, reverse=True):
        if remaining <= budget:
            break
        protected.append(d)
        remaining -= d.damage
    return protected


def mil_weight_consts(mlmodel) -> list[tuple[str, tuple[int, ...]]]:
    """(weight const name, shape) of every conv / linear op of the program, in program order."""
    program = mlmodel._mil_program
    out = []
    for op in program.functions["main"].operations:
        if op.op_type in ("conv", "linear"):
            weight = op.inputs["weight"]
            out.append((weight.op.name, tuple(int(s) for s in weight.shape)))
    return out


def protected_const_names(model: torch.nn.Module, mlmodel, images: np.ndarray, bits: int, threshold: float
                          ) -> tuple[list[str], dict]:
    """MIL weight-const names to leave uncompressed, and a summary for the manifest."""
    folded = copy.deepcopy(model).eval()
    x = torch.from_numpy(images[:4].astype(np.float32))
    damages = measure(folded, x, bits)
    layers = weight_layers_in_order(folded, x[:1])
    consts = mil_weight_consts(mlmodel)
    shapes_match = len(layers) == len(consts) and all(
        tuple(m.weight.shape) == shape for (_, m), (_, shape) in zip(layers, consts, strict=True))
    budget = (1.0 - threshold) / 2.0
    protected = choose_protected(damages, budget)
    summary = {"bits_simulated": bits, "budget": budget,
               "predicted_damage_all": round(sum(d.damage for d in damages), 6),
               "predicted_damage_kept": round(sum(d.damage for d in damages) - sum(d.damage for d in protected), 6),
               "protected_layers": [d.name for d in protected],
               "protected_weights": int(sum(d.numel for d in protected)),
               "compressible_weights": int(sum(d.numel for d in damages)),
               "mapped_to_program": shapes_match}
    if not shapes_match:
        return [], summary
    return [consts[d.index][0] for d in protected], summary
