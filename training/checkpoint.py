"""Checkpoints: weights in safetensors, everything else in JSON -- never a bare pickle.

Layout of a checkpoint ``NAME`` (``NAME.safetensors`` is the one file ``dp-export`` needs):
- ``NAME.safetensors``: the model's state dict; its safetensors metadata holds ``model_config``
  (JSON: backbone, embedding_dim, pooling, input_size, ...), so the file is self-describing.
- ``NAME.optim.safetensors``: optimiser tensors (flattened ``state.<param>.<key>``), for --resume.
- ``NAME.json``: trainer state (epoch, step, config, metrics history, optimiser param groups).
Each file is written to a temporary name and renamed, so an interrupted save leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from deepproduct.sdk.jsonio import loads as json_loads
from deepproduct.sdk.registry import did_you_mean

from .atomic import atomic_path, write_text_atomic
from .models import EmbeddingNet, get_architecture, list_architectures
from .models.registry import ARCHITECTURES

CHECKPOINT_FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or not a DeepProduct checkpoint."""


def _weights_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix("")
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def model_config_of(model: EmbeddingNet) -> dict[str, Any]:
    cfg = {"backbone": model.backbone_name, "embedding_dim": model.embedding_dim,
           "pooling": model.pooling_name, "input_size": model.input_size,
           "pretrained_source": model.pretrained_source,
           "checkpoint_format_version": CHECKPOINT_FORMAT_VERSION}
    cfg.update(getattr(model, "extra_config", {}) or {})
    return cfg


def save_checkpoint(path: str | Path, model: EmbeddingNet, *, model_config: dict[str, Any],
                    trainer_state: dict[str, Any] | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> Path:
    """Write the checkpoint files atomically; returns the weights path."""
    weights = _weights_path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": "deepproduct-checkpoint", "model_config": json.dumps(model_config)}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata=meta)
    base = weights.with_suffix("")
    json_state = dict(trainer_state or {})
    if optimizer is not None:
        opt = optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {}
        for pid, pstate in opt["state"].items():
            for key, value in pstate.items():
                tensors[f"state.{pid}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
        with atomic_path(base.with_name(base.name + ".optim.safetensors")) as tmp:
            save_file(tensors, str(tmp))
        json_state["optimizer_param_groups"] = opt["param_groups"]
    json_state["model_config"] = model_config
    write_text_atomic(base.with_name(base.name + ".json"), json.dumps(json_state, indent=2, default=str))
    return weights


def read_model_config(path: str | Path) -> dict[str, Any]:
    weights = _weights_path(path)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint not found: {weights}")
    try:
        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors checkpoint ({exc})") from exc
    if meta.get("format") != "deepproduct-checkpoint" or "model_config" not in meta:
        raise CheckpointError(f"{weights}: not a DeepProduct checkpoint (no model_config metadata)")
    try:
        cfg = json_loads(meta["model_config"], source=f"{path} model_config")  # strict grammar, bounded depth
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{weights}: model_config metadata is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{weights}: model_config metadata is not a JSON object")
    for key, (low, high) in {"embedding_dim": (1, 65536), "input_size": (32, 2048),
                             "trained_input_size": (32, 2048)}.items():
        v = cfg.get(key)  # checked before anything is built: a 180 KB file must not allocate 13 GB
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high):
            raise CheckpointError(f"{weights}: model_config {key} is {v!r}; expected an integer in {low}..{high}")
    _check_format_version(weights, cfg.get("checkpoint_format_version"))
    return cfg


def _check_format_version(weights: Path, version: Any) -> None:
    """Refuse a layout this code does not know: guessing would export or resume the wrong thing
    (every checkpoint we ever wrote carries the key, so a missing one is damage too)."""
    if type(version) is not int or version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{weights}: checkpoint_format_version {version!r} is not supported "
                              f"(this version reads {CHECKPOINT_FORMAT_VERSION})")


def build_model_from_config(cfg: dict[str, Any]) -> EmbeddingNet:
    """Rebuild the architecture a checkpoint describes (random weights; load them next).

    Any architecture registered with ``register_architecture`` (models/registry.py) is rebuilt by
    its ``rebuild``; an unknown one is a CheckpointError naming the registered ones.
    """
    arch = cfg.get("architecture", "embedding_net")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown architecture {arch!r} in checkpoint{did_you_mean(arch, ARCHITECTURES.names())}"
                              f"; registered: {', '.join(list_architectures())}")
    return get_architecture(arch).rebuild(cfg, cfg.get("pooling", "avg"))


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[EmbeddingNet, dict[str, Any]]:
    """Load a checkpoint's model in eval mode, with its config."""
    cfg = read_model_config(path)
    model = build_model_from_config(cfg)
    weights = _weights_path(path)
    try:
        state = load_file(str(weights), device=map_location)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights}: corrupt checkpoint ({exc})") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not match {cfg['backbone']} "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return model.eval(), cfg


def check_same_shape(model: nn.Module, checkpoint_model: nn.Module, checkpoint: str | Path, what: str) -> None:
    """Refuse (``CheckpointError``, one line) a checkpoint whose architecture or embedding size
    differs from ``model``'s, instead of torch's 100-line ``size mismatch`` traceback."""
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in checkpoint_model.state_dict().items()}
    if mine == theirs:
        return
    missing, extra = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
    shape = [k for k in sorted(set(mine) & set(theirs)) if mine[k] != theirs[k]]
    detail = (f"{shape[0]} is {theirs[shape[0]]} in the checkpoint but {mine[shape[0]]} in the config"
              if shape else f"{len(missing)} tensor(s) missing, {len(extra)} unexpected (another architecture)")
    raise CheckpointError(f"{_weights_path(checkpoint)}: does not fit the configured model for {what}: {detail}; "
                          "use the config the checkpoint was trained with (its run's config.yaml)")


def _loss_state_path(path: str | Path) -> Path:
    base = _weights_path(path).with_suffix("")
    return base.with_name(base.name + ".losses.safetensors")


def save_loss_state(path: str | Path, losses: list[nn.Module]) -> Path | None:
    """Weights that live in the losses (SGML's attribute head, classification proxies, DAML's
    generator) beside the checkpoint, so ``--resume`` restores them; nothing is written when no
    loss has state (the plain recipes)."""
    state = {f"{i}.{k}": v.detach().contiguous().cpu()
             for i, loss in enumerate(losses) for k, v in loss.state_dict().items()}
    if not state:
        return None
    target = _loss_state_path(path)
    with atomic_path(target) as tmp:
        save_file(state, str(tmp))
    return target


def load_loss_state(path: str | Path, losses: list[nn.Module]) -> None:
    target = _loss_state_path(path)
    if not target.is_file():
        if any(loss.state_dict() for loss in losses):
            raise CheckpointError(f"{target}: missing; the losses of this run have weights to restore")
        return
    tensors = _load_tensors(target)
    for i, loss in enumerate(losses):
        prefix = f"{i}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        loss.load_state_dict(own, strict=True)


def load_trainer_state(path: str | Path, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    base = _weights_path(path).with_suffix("")
    json_path = base.with_name(base.name + ".json")
    if not json_path.is_file():
        raise CheckpointError(f"no trainer state beside the checkpoint: {json_path}")
    try:
        state = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CheckpointError(f"{json_path}: corrupt trainer state, not valid JSON ({exc})") from None
    for key in ("epoch", "step"):
        if not isinstance(state, dict) or type(state.get(key)) is not int:
            raise CheckpointError(f"{json_path}: corrupt trainer state (no integer {key!r})")
    if optimizer is not None:
        optim_path = base.with_name(base.name + ".optim.safetensors")
        if not optim_path.is_file():
            raise CheckpointError(f"{optim_path}: missing; --resume needs the optimiser state saved beside "
                                  "the checkpoint (copy it along, or start a new run from the weights)")
        if not isinstance(state.get("optimizer_param_groups"), list):
            raise CheckpointError(f"{json_path}: corrupt trainer state (no optimizer_param_groups list)")
        tensors = _load_tensors(optim_path)
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        try:
            for key, value in tensors.items():
                _, pid, name = key.split(".", 2)
                per_param.setdefault(int(pid), {})[name] = value
            optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer_param_groups"]})
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{optim_path}: optimiser state does not fit this run ({exc})") from None
    return state


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def embedding_space_id(model: nn.Module) -> str:
    """SHA-256 over the exported weights: indexes made by different weights cannot be mixed."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("classifier."):
            continue  # the multitask head is not part of the embedding
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
