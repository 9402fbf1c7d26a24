"""A small numpy evaluator for Core ML ML Programs, so Core ML numerics can be checked on Linux.

Why this exists: Core ML prediction (``MLModel.predict``, ``compile_model``, ``MLComputePlan``)
needs macOS, and coremltools' own comparison helpers (``compare_backend``,
``assert_model_is_valid``) silently pass on Linux -- they can never be a gate. No library runs a
converted ML Program elsewhere, so this module does: it rebuilds the saved program with
``coremltools.converters.mil.frontend.milproto.load`` (the exact ops, constants and dtypes that
were written into the .mlpackage) and executes it op by op with numpy kernels of our own
(coremltools' value inference covers constants only, and its reduce ops break on numpy 2.4).

Numerics: every kernel computes in float32 and rounds its result to the op's declared output
dtype, so an fp16 program is evaluated with fp16 storage between ops (an approximation of the
GPU/Neural Engine, which may accumulate differently inside an op). Compressed weights
(``constexpr_*`` ops: int8 affine, palettes) are decompressed by coremltools' own value inference
of those ops, i.e. exactly as stored. What it cannot see: the pixel-buffer conversion Vision does
before the model (so the RGB colour layout is asserted from the spec instead) and device-specific
kernels. On EfficientNet-Lite0 at 224 it measured mean cosine 1.000000 (fp32) and 0.999985 (fp16)
against PyTorch; tests/export/test_export_roundtrip.py checks that it catches a missing normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class MILEvaluationError(RuntimeError):
    """An op this evaluator has no kernel for, or a program it cannot load."""


Kernel = Callable[["_OpView"], np.ndarray]
_KERNELS: dict[str, Kernel] = {}


def kernel(*names: str) -> Callable[[Kernel], Kernel]:
    def wrap(fn: Kernel) -> Kernel:
        for name in names:
            _KERNELS[name] = fn
        return fn

    return wrap


def supported_ops() -> list[str]:
    return sorted(_KERNELS) + ["const"]


class _OpView:
    """An op with its inputs resolved to numpy arrays (float32 for float tensors)."""

    def __init__(self, op: Any, env: dict[str, Any]) -> None:
        self.op = op
        self.env = env

    def has(self, name: str) -> bool:
        return name in self.op.inputs and self.op.inputs[name] is not None

    def raw(self, name: str, default: Any = None) -> Any:
        if not self.has(name):
            return default
        var = self.op.inputs[name]
        if isinstance(var, (list, tuple)):
            return [self._value(v) for v in var]
        return self._value(var)

    def __getitem__(self, name: str) -> Any:
        value = self.raw(name)
        if isinstance(value, np.ndarray) and value.dtype == np.float16:
            return value.astype(np.float32)
        if isinstance(value, list):
            return [v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float16 else v
                    for v in value]
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if self.has(name) else default

    def _value(self, var: Any) -> Any:
        if var.name in self.env:
            return self.env[var.name]
        if var.val is not None:
            return _as_numpy(var.val)
        raise MILEvaluationError(f"op {self.op.name}: input {var.name} has no value")


def _as_numpy(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    if isinstance(value, (bool, int, float)):
        return np.asarray(value)
    return value  # strings (pad_type, dtype names)


def _out_dtype(var: Any) -> np.dtype | None:
    from coremltools.converters.mil.mil import types

    try:
        return np.dtype(types.nptype_from_builtin(var.dtype))
    except Exception:  # noqa: BLE001 - tuples, strings: leave the value as computed
        return None


# ---------------------------------------------------------------- elementwise and activations
@kernel("add")
def _add(o: _OpView) -> np.ndarray:
    return o["x"] + o["y"]


@kernel("sub")
def _sub(o: _OpView) -> np.ndarray:
    return o["x"] - o["y"]


@kernel("mul")
def _mul(o: _OpView) -> np.ndarray:
    return o["x"] * o["y"]


@kernel("real_div")
def _div(o: _OpView) -> np.ndarray:
    return o["x"] / o["y"]


@kernel("maximum")
def _maximum(o: _OpView) -> np.ndarray:
    return np.maximum(o["x"], o["y"])


@kernel("minimum")
def _minimum(o: _OpView) -> np.ndarray:
    return np.minimum(o["x"], o["y"])


@kernel("pow")
def _pow(o: _OpView) -> np.ndarray:
    return np.power(o["x"], o["y"])


@kernel("sqrt")
def _sqrt(o: _OpView) -> np.ndarray:
    return np.sqrt(o["x"])


@kernel("rsqrt")
def _rsqrt(o: _OpView) -> np.ndarray:
    return 1.0 / np.sqrt(o["x"] + o.get("epsilon", 1e-12))


@kernel("clip")
def _clip(o: _OpView) -> np.ndarray:
    return np.clip(o["x"], o["alpha"], o["beta"])


@kernel("relu")
def _relu(o: _OpView) -> np.ndarray:
    return np.maximum(o["x"], 0)


@kernel("thresholded_relu")
def _thresholded_relu(o: _OpView) -> np.ndarray:
    x = o["x"]
    return np.where(x > o.get("alpha", 1.0), x, 0.0)


@kernel("leaky_relu")
def _leaky_relu(o: _OpView) -> np.ndarray:
    x = o["x"]
    return np.where(x >= 0, x, o.get("alpha", 0.01) * x)


@kernel("relu6")
def _relu6(o: _OpView) -> np.ndarray:
    return np.clip(o["x"], 0, 6)


@kernel("sigmoid")
def _sigmoid(o: _OpView) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-o["x"]))


@kernel("sigmoid_hard")
def _sigmoid_hard(o: _OpView) -> np.ndarray:
    return np.clip(o.get("alpha", 0.2) * o["x"] + o.get("beta", 0.5), 0, 1)


@kernel("silu")
def _silu(o: _OpView) -> np.ndarray:
    x = o["x"]
    return x / (1.0 + np.exp(-x))


@kernel("identity")
def _identity(o: _OpView) -> np.ndarray:
    return o.raw("x")


@kernel("cast")
def _cast(o: _OpView) -> np.ndarray:
    return o["x"]  # the declared output dtype does the rounding


# ---------------------------------------------------------------------------- shapes
@kernel("reshape")
def _reshape(o: _OpView) -> np.ndarray:
    return np.reshape(o.raw("x"), [int(v) for v in o["shape"]])


@kernel("squeeze")
def _squeeze(o: _OpView) -> np.ndarray:
    axes = o.get("axes")
    x = o.raw("x")
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(int(a) for a in axes))


@kernel("expand_dims")
def _expand_dims(o: _OpView) -> np.ndarray:
    x = o.raw("x")
    for axis in sorted(int(a) for a in o["axes"]):
        x = np.expand_dims(x, axis if axis >= 0 else x.ndim + 1 + axis)
    return x


@kernel("transpose")
def _transpose(o: _OpView) -> np.ndarray:
    return np.transpose(o.raw("x"), [int(p) for p in o["perm"]])


@kernel("tile")
def _tile(o: _OpView) -> np.ndarray:
    return np.tile(o.raw("x"), [int(r) for r in o["reps"]])


@kernel("concat")
def _concat(o: _OpView) -> np.ndarray:
    return np.concatenate(o["values"], axis=int(o["axis"]))


@kernel("pad")
def _pad(o: _OpView) -> np.ndarray:
    x = o["x"]
    pad = [int(v) for v in o["pad"]]
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
    mode = str(o.get("mode", "constant"))
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(o.get("constant_val", 0.0)))
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[mode])


# --------------------------------------------------------------------------- reductions
def _axes(o: _OpView) -> tuple[int, ...] | None:
    axes = o.get("axes")
    return None if axes is None else tuple(int(a) for a in np.atleast_1d(axes))


def _keep(o: _OpView) -> bool:
    return bool(o.get("keep_dims", False))


@kernel("reduce_mean")
def _reduce_mean(o: _OpView) -> np.ndarray:
    return np.mean(o["x"], axis=_axes(o), keepdims=_keep(o))


@kernel("reduce_sum")
def _reduce_sum(o: _OpView) -> np.ndarray:
    return np.sum(o["x"], axis=_axes(o), keepdims=_keep(o))


@kernel("reduce_max")
def _reduce_max(o: _OpView) -> np.ndarray:
    return np.max(o["x"], axis=_axes(o), keepdims=_keep(o))


@kernel("reduce_l2_norm")
def _reduce_l2(o: _OpView) -> np.ndarray:
    return np.sqrt(np.sum(np.square(o["x"]), axis=_axes(o), keepdims=_keep(o)))


# ------------------------------------------------------------------------ linear algebra
@kernel("linear")
def _linear(o: _OpView) -> np.ndarray:
    out = o["x"] @ o["weight"].T
    bias = o.get("bias")
    return out if bias is None else out + bias


@kernel("matmul")
def _matmul(o: _OpView) -> np.ndarray:
    x, y = o["x"], o["y"]
    if o.get("transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if o.get("transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    return x @ y


@kernel("batch_norm")
def _batch_norm(o: _OpView) -> np.ndarray:
    x = o["x"]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = 1.0 / np.sqrt(o["variance"] + o.get("epsilon", 1e-5))
    if o.has("gamma"):
        scale = scale * o["gamma"]
    out = (x - o["mean"].reshape(shape)) * scale.reshape(shape)
    return out + o["beta"].reshape(shape) if o.has("beta") else out


def _conv_padding(o: _OpView, in_hw: tuple[int, int], k_hw: tuple[int, int],
                  strides: list[int], dilations: list[int]) -> list[int]:
    pad_type = str(o.get("pad_type", "valid"))
    if pad_type == "custom":
        return [int(p) for p in o["pad"]]
    if pad_type == "valid":
        return [0, 0, 0, 0]
    pads: list[int] = []
    for size, k, s, d in zip(in_hw, k_hw, strides, dilations, strict=False):
        eff = (k - 1) * d + 1
        total = max((int(np.ceil(size / s)) - 1) * s + eff - size, 0)
        small, large = total // 2, total - total // 2
        pads += [large, small] if pad_type == "same_lower" else [small, large]
    return pads


@kernel("conv")
def _conv(o: _OpView) -> np.ndarray:
    """2-D convolution (NCHW, OIHW) as a sum over kernel taps of strided views."""
    x, w = o["x"], o["weight"]
    if x.ndim != 4:
        raise MILEvaluationError(f"conv {o.op.name}: only 2-D convolution is implemented")
    groups = int(o.get("groups", 1))
    strides = [int(s) for s in o.get("strides", [1, 1])]
    dilations = [int(d) for d in o.get("dilations", [1, 1])]
    cout, cin_g, kh, kw = w.shape
    top, bottom, left, right = _conv_padding(o, x.shape[2:], (kh, kw), strides, dilations)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, hp, wp = xp.shape
    ho = (hp - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    wo = (wp - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    if kh == kw == 1 and groups == 1:  # pointwise: one matrix product
        xs = xp[:, :, ::strides[0], ::strides[1]][:, :, :ho, :wo]
        out = np.matmul(w.reshape(cout, cin_g)[None], xs.reshape(n, c, ho * wo)).reshape(n, cout, ho, wo)
        bias = o.get("bias")
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)
    out = np.zeros((n, cout, ho, wo), dtype=np.float32)
    depthwise = groups == c and cin_g == 1
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dilations[0], j * dilations[1]
            xs = xp[:, :, y0:y0 + strides[0] * (ho - 1) + 1:strides[0], x0:x0 + strides[1] * (wo - 1) + 1:strides[1]]
            tap = w[:, :, i, j]
            if depthwise:
                mult = cout // c
                src = np.repeat(xs, mult, axis=1) if mult > 1 else xs
                out += src * tap[:, 0][None, :, None, None]
            elif groups == 1:
                out += np.einsum("nchw,oc->nohw", xs, tap, optimize=True)
            else:
                og = cout // groups
                xg = xs.reshape(n, groups, cin_g, ho, wo)
                tg = tap.reshape(groups, og, cin_g)
                out += np.einsum("ngchw,goc->ngohw", xg, tg, optimize=True).reshape(n, cout, ho, wo)
    bias = o.get("bias")
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def _pool(o: _OpView, reducer: str) -> np.ndarray:
    x = o["x"]
    kh, kw = (int(k) for k in o["kernel_sizes"])
    strides = [int(s) for s in o.get("strides", [1, 1])]
    top, bottom, left, right = _conv_padding(o, x.shape[2:], (kh, kw), strides, [1, 1])
    fill = -np.inf if reducer == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    ones = np.pad(np.ones(x.shape[2:], np.float32), ((top, bottom), (left, right)))
    ho = (xp.shape[2] - kh) // strides[0] + 1
    wo = (xp.shape[3] - kw) // strides[1] + 1
    taps = [xp[:, :, i:i + strides[0] * (ho - 1) + 1:strides[0], j:j + strides[1] * (wo - 1) + 1:strides[1]]
            for i in range(kh) for j in range(kw)]
    if reducer == "max":
        return np.max(np.stack(taps), axis=0)
    total = np.sum(np.stack(taps), axis=0)
    if o.get("exclude_padding_from_average", False):
        counts = sum(ones[i:i + strides[0] * (ho - 1) + 1:strides[0], j:j + strides[1] * (wo - 1) + 1:strides[1]]
                     for i in range(kh) for j in range(kw))
        return total / counts
    return total / (kh * kw)


@kernel("avg_pool")
def _avg_pool(o: _OpView) -> np.ndarray:
    return _pool(o, "avg")


@kernel("max_pool")
def _max_pool(o: _OpView) -> np.ndarray:
    return _pool(o, "max")


# ---------------------------------------------------------------------------- the program
class MILProgram:
    """A saved .mlpackage's ML Program, runnable with numpy."""

    def __init__(self, package: str | Path) -> None:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto import load as milproto

        self.model = ct.models.MLModel(str(package), skip_model_load=True)
        self.spec = self.model.get_spec()
        if self.spec.WhichOneof("Type") != "mlProgram":
            raise MILEvaluationError(f"{package}: not an ML Program")
        try:
            self.program = milproto.load(self.spec, self.spec.specificationVersion, self.model.weights_dir)
        except Exception as exc:  # noqa: BLE001 - surface why the program cannot be rebuilt
            raise MILEvaluationError(f"{package}: milproto.load failed ({exc})") from exc
        self.function = self.program.functions["main"]
        self._constants: dict[str, Any] = {}
        for op in self.function.operations:
            if op.op_type == "const" or op.op_type.startswith("constexpr_"):
                self._constants[op.outputs[0].name] = self._materialise(op)
        missing = sorted({op.op_type for op in self.function.operations
                          if op.op_type not in _KERNELS and op.op_type != "const"
                          and not op.op_type.startswith("constexpr_")})
        if missing:
            raise MILEvaluationError(f"{package}: no numpy kernel for MIL op(s) {', '.join(missing)}")

    @staticmethod
    def _materialise(op: Any) -> Any:
        """A constant's value; fp16 tensors widened to float32 once (exact) for the kernels."""
        value = MILProgram._raw_constant(op)
        if isinstance(value, np.ndarray) and value.dtype == np.float16:
            return value.astype(np.float32)
        return value

    @staticmethod
    def _raw_constant(op: Any) -> Any:
        if op.op_type == "const":
            return _as_numpy(op.outputs[0].val)
        try:  # coremltools' own decompression of its compressed-weight ops
            value = op.materialized_val_inference()
        except Exception as exc:  # noqa: BLE001
            raise MILEvaluationError(f"cannot decompress {op.op_type} {op.name}: {exc}") from exc
        value = value[0] if isinstance(value, (list, tuple)) else value
        dtype = _out_dtype(op.outputs[0])
        return np.asarray(value).astype(dtype) if dtype is not None else np.asarray(value)

    @property
    def op_types(self) -> list[str]:
        return [op.op_type for op in self.function.operations]

    @property
    def input_name(self) -> str:
        return next(iter(self.function.inputs))

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.function.outputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env: dict[str, Any] = dict(self._constants)
        for name, var in self.function.inputs.items():
            dtype = _out_dtype(var) or np.dtype(np.float32)
            env[name] = np.asarray(inputs[name]).astype(dtype)
        for op in self.function.operations:
            if op.outputs[0].name in env:
                continue
            value = _KERNELS[op.op_type](_OpView(op, env))
            out_var = op.outputs[0]
            dtype = _out_dtype(out_var)
            value = np.asarray(value)
            env[out_var.name] = value.astype(dtype) if dtype is not None else value
        return {v.name: np.asarray(env[v.name]) for v in self.function.outputs}

    def embed_images(self, images_01_nchw: np.ndarray) -> np.ndarray:
        """Embeddings for NCHW RGB [0, 1] images fed as the 0-255 pixels the image input expects.

        One image at a time: the program's shapes are those of the converted model (batch 1), and
        batching measured no faster with numpy here.
        """
        name, out_name = self.input_name, self.output_names[0]
        outs = [self.run({name: image[None].astype(np.float32) * 255.0})[out_name].astype(np.float32).reshape(-1)
                for image in images_01_nchw]
        return np.stack(outs)
