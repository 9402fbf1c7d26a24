"""Training configuration: dataclasses loaded from YAML, with ``key=value`` overrides.

Every symbol of docs/method.md is a field here with its default. Unknown keys are errors that name the
key (and the nearest valid one): a typo must not silently train the wrong recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class DataConfig:
    manifest: str = "runs/demo/data/manifest.csv"
    image_size: int = 224
    # FixRes (Touvron et al. 2019): train at image_size, then fit the PCA head, evaluate and ship
    # at ship_size (None: image_size). Random-resized crops make training objects look larger
    # than test objects at the same size; testing above the training size compensates, and the
    # training steps stay at the cheap size (docs/transfer-recipe.md, "Input size").
    ship_size: int | None = None
    products_per_batch: int = 8  # P
    images_per_product: int = 4  # K
    workers: int = 0
    augment: bool = True
    imagenet_folder: str | None = None  # ImageNet-format folder: enables the paper's multitask variant
    imagenet_batch: int | None = None  # B_img; default: half the metric batch
    eval_batch_size: int = 64


@dataclass
class ModelConfig:
    backbone: str = "efficientnet_lite0"
    embedding_dim: int = 128
    pooling: str = "avg"
    pretrained: bool | str = True  # True (shipped weights), False, or a local weights path
    freeze_stages: int = 0  # freeze the first N backbone stages (cheaper steps on a CPU)
    freeze_bn: bool = True  # keep BatchNorm statistics fixed (small P x K batches)
    architecture: str = "embedding_net"
    options: dict = field(default_factory=dict)  # architecture-specific settings


@dataclass
class HeadConfig:
    """How the linear head is made (docs/transfer-recipe.md says why)."""

    init: str = "random"  # random | pca: start as the PCA of the pretrained pooled features (train images)
    projection: str = "none"  # none | pca | pca_whiten: after training, refit the head as the PCA of
    #                           the fine-tuned pooled features of the training images (folded in)
    pooled_loss_weight: float = 0.0  # metric losses also on the L2-normalised pooled features
    orthogonal_weight: float = 0.0  # weight of ||W W^T / s - I||^2 / D: keeps the head near-orthogonal
    whiten_power: float = 0.0  # projection pca: divide axis i by std_i ** power (0 plain PCA, 1 whitening)
    normalise_pooled: bool = False  # L2-normalise the pooled features before the head (in the exported graph)
    projection_dim: int | None = None  # projection: the shipped embedding's size (default: model.embedding_dim)


@dataclass
class LossTerm:
    name: str = "robust_contrastive"
    weight: float = 1.0
    params: dict = field(default_factory=dict)


@dataclass
class MultitaskConfig:
    variant: str = "auto"  # auto | distillation | imagenet | none
    lambda_cls: float = 0.5
    temperature: float = 2.0


@dataclass
class OptimConfig:
    lr: float = 1e-4
    head_lr_multiplier: float = 10.0
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    epochs: int = 5
    steps_per_epoch: int | None = None  # default: one pass over the training products
    grad_clip: float | None = 5.0


@dataclass
class EvalConfig:
    """Extra evaluation beside the held-out split (docs/transfer-benchmark.md)."""

    transfer_manifest: str | None = None  # a `dp-data transfer` set, scored every evaluation (head + pooled)
    transfer_max_products: int | None = None  # score a fixed seeded subset of its products (cheaper)
    transfer_at_start: bool = True  # also score it before the first step (the pretrained reference)


@dataclass
class TrainConfig:
    name: str = "run"
    out_dir: str = "runs/train"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # CUDA only
    channels_last: bool = True  # CUDA only
    eval_every: int = 1  # epochs
    log_every: int = 10  # steps
    threads: int | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    losses: list[LossTerm] = field(default_factory=lambda: [LossTerm()])
    multitask: MultitaskConfig = field(default_factory=MultitaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls: type, data: Any, where: str) -> Any:
    """Construct dataclass ``cls`` from plain data, checking every key."""
    if dataclasses.is_dataclass(cls):
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        kwargs = {}
        for key, value in data.items():
            if key not in names:
                near = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {where + '.' if where else ''}{near[0]}?)" if near else ""
                raise ConfigError(f"unknown config key {where + '.' if where else ''}{key}{hint}")
            kwargs[key] = _build(hints[key], value, f"{where}.{key}" if where else key)
        return cls(**kwargs)
    origin = typing.get_origin(cls)
    if origin is list:
        (item,) = typing.get_args(cls)
        if not isinstance(data, list):
            raise ConfigError(f"{where}: expected a list")
        return [_build(item, v, f"{where}.{i}") for i, v in enumerate(data)]
    return _coerce(cls, data, where)


def _coerce(cls: Any, value: Any, where: str) -> Any:
    """``value`` checked against the field's type, naming the key: no silent conversion.

    Why strict: ``optim.epochs=true`` used to become 1 and ``model.pretrained=1`` a weights path
    "1", i.e. random weights. A bool is never a number here, a number never a bool, and a number
    becomes a string only for a plain ``str`` field (``name=2024``).
    """
    args = typing.get_args(cls)
    if value is None:
        if cls is Any or type(None) in args:
            return None
        raise ConfigError(f"{where}: must not be empty")
    if cls is Any:
        return value
    options = [a for a in args if a is not type(None)] if args else [cls]
    for target in options:
        ok, converted = _coerce_one(target, value, only=len(options) == 1)
        if ok:
            return converted
    names = " or ".join(_TYPE_WORDS.get(t, getattr(t, "__name__", str(t))) for t in options)
    raise ConfigError(f"{where}: expected {names}, got {value!r} ({type(value).__name__})")


_TYPE_WORDS = {bool: "true/false", int: "int", float: "float", str: "str", dict: "a mapping"}


def _coerce_one(target: Any, value: Any, *, only: bool) -> tuple[bool, Any]:
    if target is Any:
        return True, value
    if target is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, None
    if target is int:
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, None
    if target is float:
        if isinstance(value, (int, float)):
            return True, float(value)
        return False, None
    if target is str:
        if isinstance(value, str):
            return True, value
        if only and isinstance(value, (int, float)):
            return True, str(value)
        return False, None
    if target is dict:
        return isinstance(value, dict), value
    return True, value


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = tree
    for i, part in enumerate(parts[:-1]):
        key: Any = int(part) if isinstance(node, list) else part
        if isinstance(node, list):
            if key >= len(node):
                raise ConfigError(f"override {dotted}: index {key} out of range")
            node = node[key]
            continue
        if part not in node or node[part] is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"override {dotted}: {'.'.join(parts[:i + 1])} is not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


#: A config is a page of text; a bigger file is a mistake (or an attack), refused before parsing.
MAX_CONFIG_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors/aliases (a 700-byte alias bomb expands to gigabytes when
    the config is saved, and no DeepProduct config needs them) and without duplicate keys (PyYAML
    keeps the last silently; the JSON grammar refuses them too)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in a config",
                                              event.start_mark)
        return super().compose_node(parent, index)


def load_yaml_text(text: str, source: str) -> Any:
    """Parse config YAML safely; every problem is one ``ConfigError`` naming ``source``."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None


def _read_config_text(path: Path) -> str:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes; a config is at most {MAX_CONFIG_BYTES} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Defaults, then the YAML file, then ``section.key=value`` overrides (values parsed as YAML)."""
    tree: dict = TrainConfig().to_dict()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found (or not a regular file): {path}")
        loaded = load_yaml_text(_read_config_text(path), str(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        _merge(tree, loaded, "")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), load_yaml_text(raw, f"override {key.strip()}"))
    cfg = _build(TrainConfig, tree, "")
    validate_config(cfg)
    return cfg


# -- value checks ----------------------------------------------------------------------------------
# Types are checked while building; these are the ranges. Why here and not in the trainer: a
# nonsense value (0 epochs, a NaN learning rate, a 0-d embedding) must fail before anything is
# built or written -- never a traceback mid-run, never a checkpoint of NaN tensors.

def _at_least(low: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v >= low else f"must be at least {low:g}"
    return check


def _finite(low: float | None = None, *, strict: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not math.isfinite(v):
            return "must be a finite number"
        if low is not None and (v <= low if strict else v < low):
            return f"must be {'greater than' if strict else 'at least'} {low:g}"
        return None
    return check


#: dotted key -> check (``*`` is any list index); ``None`` values (optional keys) are not checked.
def _between(low: float, high: float) -> Callable[[Any], str | None]:
    """A range with an upper bound too: a typo'd 100000 must fail here, not allocate 30 GB later."""
    def check(v: Any) -> str | None:
        if v < low:
            return f"must be at least {low:g}"
        return None if v <= high else f"must be at most {high:g}"
    return check


def _plain_name(v: Any) -> str | None:
    """A run name is one folder name: never a path that would put the run outside ``out_dir``."""
    return None if v and v not in (".", "..") and "/" not in v and "\\" not in v else "must be a plain folder name"


VALUE_RULES: dict[str, Callable[[Any], str | None]] = {
    "eval_every": _at_least(1), "log_every": _at_least(1), "threads": _between(1, 1024),
    "seed": _between(0, 2**32 - 1), "name": _plain_name,
    "data.image_size": _between(32, 2048),  # the backbones' total stride: smaller leaves no feature map
    "data.ship_size": _between(32, 2048),
    "data.products_per_batch": _at_least(1), "data.images_per_product": _at_least(1),
    "data.workers": _at_least(0), "data.imagenet_batch": _at_least(1), "data.eval_batch_size": _at_least(1),
    "model.embedding_dim": _between(1, 65536), "model.freeze_stages": _at_least(0),
    "head.pooled_loss_weight": _finite(0.0), "head.orthogonal_weight": _finite(0.0), "head.whiten_power": _finite(0.0),
    "losses.*.weight": _finite(0.0),
    "multitask.lambda_cls": _finite(0.0), "multitask.temperature": _finite(0.0, strict=True),
    "optim.lr": _finite(0.0, strict=True), "optim.head_lr_multiplier": _finite(0.0, strict=True),
    "optim.weight_decay": _finite(0.0), "optim.warmup_steps": _at_least(0), "optim.epochs": _between(1, 1_000_000),
    "optim.steps_per_epoch": _between(1, 100_000_000), "optim.grad_clip": _finite(0.0, strict=True),
}


def validate_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` naming the first key whose value is out of range (see VALUE_RULES)."""
    for key, check in VALUE_RULES.items():
        for where, value in _lookup(cfg, key.split("."), ""):
            problem = None if value is None else check(value)
            if problem:
                raise ConfigError(f"{where}: {problem}, got {value!r}")


def _lookup(node: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        for i, item in enumerate(node):
            yield from _lookup(item, rest, f"{where}.{i}")
        return
    yield from _lookup(getattr(node, head), rest, f"{where}.{head}" if where else head)


def _merge(base: dict, new: dict, where: str) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key not in ("params", "options"):
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    from .atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
