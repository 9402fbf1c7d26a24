"""PyTorch -> ExecuTorch ``.pte`` (the conversions behind the rows in executorch/exporter.py).

ExecuTorch (PyTorch's own on-device runtime) runs one ``.pte`` file whose subgraphs are handed to
a *delegate* (XNNPACK on Android/iOS CPUs, Core ML on Apple). Whatever a partitioner does not take
runs on ExecuTorch's *portable* kernels: reference C++ loops, many times slower, and the export
succeeds silently. So every export here counts what was delegated (:func:`delegation_summary`)
and refuses a program with any non-delegated compute op, naming the op and the source line.

Two ops of our embedding head are not taken by XNNPACK as PyTorch writes them (measured with
executorch 1.5.1): ``mean(dim=(2, 3))`` without ``keepdim`` (XNNPACK's global average pooling
needs ``keepdim=True``) and ``F.normalize`` (``linalg_vector_norm``, ``sum`` and ``pow(0.5)`` have
no XNNPACK node). :class:`XnnpackForms` rewrites both while the model is captured, into ops with
the same result that XNNPACK does take: ``mean(keepdim=True).flatten(1)``, and
``x * rsqrt(max(D * mean(x*x), eps^2))`` where the mean over the embedding runs as a global
average pool of an ``N x 1 x D x 1`` view. Any other op XNNPACK refuses (GeM's learnable power,
say) fails the export with its name.

The input contract is the same as the other formats: RGB float in [0, 1], NCHW ``1x3xSxS``,
normalisation inside the graph, one output (the L2-normalised embedding). A ``.pte`` carries no
tensor names, so the program also holds constant methods (``deepproduct_metadata``: the
:meth:`ModelInfo.essentials` JSON, ``input_name``, ``output_name``) that a runtime can read
without the manifest.

int8 is PT2E static quantisation with ExecuTorch's ``XNNPACKQuantizer`` (per-channel symmetric
int8 weights, per-tensor int8 activations from min/max observers) on the backbone only; the head
stays float32 for the reason given in tflite/convert.py (8-bit steps on a unit vector cost more
cosine than the whole int8 backbone). Both run inside the XNNPACK delegate.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..bias_correction import apply_bias_shifts, pt2e_bias_shifts
from ..errors import ExportError
from ..model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo

XNNPACK = "XnnpackBackend"
COREML = "CoreMLBackend"
#: Core ML delegate target: the lowest iOS whose ML Program ops our graph needs (as coreml_export).
COREML_MINIMUM_TARGET = "iOS16"
METADATA_METHOD = "deepproduct_metadata"
#: Module path whose nodes the int8 quantizer annotates (``EmbeddingNet.features``).
BACKBONE = "features"
#: Ops a lowered program may keep outside a delegate: pure bookkeeping, no compute.
BOOKKEEPING = {"getitem"}


# --------------------------------------------------------------------------- capture


def _arg(args: tuple, kwargs: dict, i: int, name: str, default=None):
    return kwargs[name] if name in kwargs else (args[i] if len(args) > i else default)


class XnnpackForms(TorchFunctionMode):
    """While active, ``mean`` over H, W and 2-D ``F.normalize`` trace as XNNPACK-delegable ops.

    Active only around ``torch.export.export``; the result is numerically the same function
    (tested against the eager model, cosine 1 - 1e-7). Anything else passes through untouched.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.mean, torch.mean):
            x = args[0]
            dim = _arg(args, kwargs, 1, "dim")
            keep = _arg(args, kwargs, 2, "keepdim", False)
            if (isinstance(x, torch.Tensor) and x.dim() == 4 and dim is not None and not keep
                    and kwargs.get("dtype") is None):
                dims = sorted(d % 4 for d in (dim if isinstance(dim, list | tuple) else [dim]))
                if dims == [2, 3]:
                    return func(x, dim=(2, 3), keepdim=True).flatten(1)
        elif func is F.normalize:
            x = args[0]
            p = _arg(args, kwargs, 1, "p", 2.0)
            dim = _arg(args, kwargs, 2, "dim", 1)
            eps = float(_arg(args, kwargs, 3, "eps", 1e-12))
            if isinstance(x, torch.Tensor) and x.dim() == 2 and p == 2 and dim % 2 == 1:
                n, d = x.shape
                mean_sq = (x * x).reshape(n, 1, d, 1).mean(dim=(2, 3), keepdim=True).reshape(n, 1)
                return x * torch.rsqrt(torch.clamp(mean_sq * float(d), min=eps * eps))
        return func(*args, **kwargs)


def example_input(size: int) -> torch.Tensor:
    return torch.rand(1, 3, size, size)


def capture(model: torch.nn.Module, size: int) -> torch.export.ExportedProgram:
    """``torch.export`` of the eval-mode model with :class:`XnnpackForms` active."""
    with torch.no_grad(), XnnpackForms():
        return torch.export.export(model.eval(), (example_input(size),))


# --------------------------------------------------------------------------- delegation


@dataclass
class DelegationSummary:
    """What a lowered program hands to delegates and what it would run on portable kernels."""

    backends: dict[str, int] = field(default_factory=dict)  # backend id -> delegate calls
    delegated_ops: int = 0
    delegated_op_counts: dict[str, int] = field(default_factory=dict)
    non_delegated: dict[str, int] = field(default_factory=dict)  # op -> count outside delegates
    non_delegated_sources: dict[str, str] = field(default_factory=dict)  # op -> first source line

    @property
    def fully_delegated(self) -> bool:
        return not self.non_delegated and self.delegated_ops > 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fully_delegated"] = self.fully_delegated
        return d

    def describe(self) -> str:
        backends = ", ".join(f"{b} x{n}" for b, n in sorted(self.backends.items())) or "none"
        return f"{self.delegated_ops} ops in {sum(self.backends.values())} delegate call(s) ({backends})"


def _op_name(target) -> str:
    name = getattr(target, "__name__", None) or str(target)
    for prefix in ("aten.", "dim_order_ops."):
        if prefix in str(target):
            return str(target).split("<EdgeOpOverload: ")[-1].split(">")[0]
    return name


def _source_line(node) -> str:
    trace = (node.meta.get("stack_trace") or "").strip().splitlines()
    files = [line.strip() for line in trace if line.strip().startswith("File ")]
    return files[-1] if files else "(no source location)"


def delegation_summary(edge_manager) -> DelegationSummary:
    """Count delegated vs non-delegated compute nodes of a lowered ``EdgeProgramManager``."""
    gm = edge_manager.exported_program().graph_module
    summary = DelegationSummary()
    backends: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        name = _op_name(node.target)
        if name == "executorch_call_delegate":
            lowered = getattr(gm, node.args[0].target)
            backends[lowered.backend_id] += 1
            for inner in lowered.original_module.graph.nodes:
                if inner.op == "call_function" and _op_name(inner.target) not in BOOKKEEPING:
                    inside[_op_name(inner.target)] += 1
        elif name not in BOOKKEEPING:
            outside[name] += 1
            summary.non_delegated_sources.setdefault(name, _source_line(node))
    summary.backends = dict(backends)
    summary.delegated_ops = sum(inside.values())
    summary.delegated_op_counts = dict(sorted(inside.items()))
    summary.non_delegated = dict(sorted(outside.items()))
    return summary


def require_full_delegation(summary: DelegationSummary, backend: str, what: str) -> None:
    """Refuse a program that would run any compute op on ExecuTorch's portable kernels."""
    if summary.non_delegated:
        ops = "; ".join(f"{op} x{n} at {summary.non_delegated_sources.get(op, '?')}"
                        for op, n in summary.non_delegated.items())
        raise ExportError(f"executorch {what}: {backend} did not take {sum(summary.non_delegated.values())} "
                          f"op(s), which would run on slow portable kernels: {ops}. Rewrite the op into "
                          "one XNNPACK supports (see docs/export.md, ExecuTorch) or drop this format.")
    if set(summary.backends) != {backend}:
        raise ExportError(f"executorch {what}: expected every delegate to be {backend}, got "
                          f"{summary.backends or 'no delegate at all'}")


# --------------------------------------------------------------------------- export


def _constant_methods(info: ModelInfo) -> dict:
    return {METADATA_METHOD: json.dumps(info.essentials(), sort_keys=True),
            "input_name": INPUT_NAME, "output_name": OUTPUT_NAME}


def _lower(ep, partitioner, info: ModelInfo, backend: str, what: str, path: Path) -> DelegationSummary:
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(ep, partitioner=[partitioner], constant_methods=_constant_methods(info))
    summary = delegation_summary(edge)
    require_full_delegation(summary, backend, what)
    program = edge.to_executorch()
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(program.buffer)
    tmp.replace(path)
    return summary


def export_xnnpack_fp32(model: torch.nn.Module, info: ModelInfo, path: Path) -> DelegationSummary:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return _lower(capture(model, info.input_size), XnnpackPartitioner(), info, XNNPACK, "fp32", path)


def in_backbone(node, prefix: str = BACKBONE) -> bool:
    """Quantise nodes under ``prefix``; nodes without a module stack (weights, constants and the
    convs' folded batch-norm weights) are neutral, else the annotators reject every conv."""
    stack = node.meta.get("nn_module_stack", {}) or {}
    if not stack:
        return True
    return any(path == prefix or str(path).startswith(prefix + ".") for path, _ in stack.values())


#: Bias correction of the int8 convolutions after calibration, as for ONNX and TFLite.
BIAS_CORRECTION = True


def int8_quantizer():
    """``XNNPACKQuantizer``, per-channel symmetric weights, min/max activations, backbone only.

    Its own module-name filter rejects the folded conv weights (no module stack: 0 of 49
    EfficientNet-Lite0 convs quantised, measured), so the backbone is selected with
    :func:`in_backbone`; conv -> ReLU6 is annotated as one pattern (observed after the clamp,
    see ``tflite_export.annotate_conv_hardtanh``), which XNNPACK's annotators only do for ReLU.
    """
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.observer import MinMaxObserver

    from ..tflite.convert import annotate_conv_hardtanh

    config = get_symmetric_quantization_config(is_per_channel=True)
    # The default HistogramObserver costs ~30x the calibration time for the same accuracy here
    # (ReLU6 bounds the activations; measured on the TFLite int8 path, tflite/convert.py).
    act = dataclasses.replace(config.input_activation,
                              observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
    config = dataclasses.replace(config, input_activation=act, output_activation=act)

    class BackboneXnnpackQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            annotate_conv_hardtanh(model, config, in_backbone)
            return super().annotate(model)

    return BackboneXnnpackQuantizer().set_global(config).set_filter_function(in_backbone)


def export_xnnpack_int8(model: torch.nn.Module, info: ModelInfo, calibration_nchw: np.ndarray,
                        path: Path) -> DelegationSummary:
    """PT2E: capture, annotate the backbone, calibrate on the given images, convert, lower."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if calibration_nchw is None or len(calibration_nchw) == 0:
        raise ExportError("executorch int8: no calibration images")
    if not any(name == BACKBONE for name, _ in model.named_children()):
        raise ExportError(f"executorch int8: the model has no '{BACKBONE}' submodule to quantise "
                          f"(children: {', '.join(n for n, _ in model.named_children())})")
    captured = capture(model, info.input_size).module()
    prepared = prepare_pt2e(captured, int8_quantizer())
    # An exported graph module does not follow .eval(): without this, calibration would run the
    # batch norms in training mode (see tflite/convert.py).
    prepared = move_exported_model_to_eval(prepared)
    with torch.no_grad():
        for image in calibration_nchw:
            prepared(torch.from_numpy(np.ascontiguousarray(image[None], dtype=np.float32)))
    shifts = {}
    if BIAS_CORRECTION:
        # Measured on an unfolded conversion (float weight -> quantize -> dequantize), applied to
        # the folded one XNNPACK lowers (export/bias_correction.py).
        unfolded = move_exported_model_to_eval(convert_pt2e(copy.deepcopy(prepared), fold_quantize=False))
        shifts = pt2e_bias_shifts(unfolded, (torch.from_numpy(np.ascontiguousarray(image[None], dtype=np.float32))
                                             for image in calibration_nchw))
    converted = move_exported_model_to_eval(convert_pt2e(prepared))
    apply_bias_shifts(converted, shifts)
    with torch.no_grad():
        ep = torch.export.export(converted, (example_input(info.input_size),))
    return _lower(ep, XnnpackPartitioner(), info, XNNPACK, "int8", path)


def export_coreml_fp16(model: torch.nn.Module, info: ModelInfo, path: Path) -> DelegationSummary:
    """A Core ML-delegated ``.pte`` (ML Program, fp16 compute, iOS 16+); runs only on Apple."""
    import coremltools as ct
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition.coreml_partitioner import CoreMLPartitioner

    specs = CoreMLBackend.generate_compile_specs(minimum_deployment_target=getattr(ct.target, COREML_MINIMUM_TARGET),
                                                 compute_precision=ct.precision.FLOAT16)
    return _lower(capture(model, info.input_size), CoreMLPartitioner(compile_specs=specs), info, COREML,
                  "coreml fp16", path)


# --------------------------------------------------------------------------- inspect and run


def pte_facts(path: Path) -> dict:
    """Structural facts read from the flatbuffer alone (no backend needed): methods, delegates."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    try:
        program = deserialize_pte_binary(Path(path).read_bytes()).program
    except Exception as exc:  # noqa: BLE001 - any parse failure is a broken file
        raise ExportError(f"{path}: not a readable ExecuTorch program ({type(exc).__name__}: {exc})") from exc
    plans = {plan.name: plan for plan in program.execution_plan}
    if "forward" not in plans:
        raise ExportError(f"{path}: no 'forward' method (methods: {', '.join(plans)})")
    forward = plans["forward"]
    return {"methods": sorted(plans), "delegates": [d.id for d in forward.delegates],
            "inputs": len(forward.inputs), "outputs": len(forward.outputs),
            "non_delegated_kernels": sorted({op.name for op in forward.operators})}


def read_metadata(path: Path) -> dict:
    """The ``deepproduct_metadata`` constant method, through the ExecuTorch runtime."""
    program = _runtime().load_program(str(path))
    return json.loads(program.load_method(METADATA_METHOD).execute([])[0])


def _runtime():
    from executorch.runtime import Runtime

    return Runtime.get()


def backend_available(backend: str) -> bool:
    """Whether this ExecuTorch runtime build registers ``backend`` (no Core ML on Linux)."""
    try:
        return bool(_runtime().backend_registry.is_available(backend))
    except Exception:  # noqa: BLE001 - no runtime at all: nothing is available
        return False


def run_pte(path: Path, images_nchw: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Embeddings through the ExecuTorch runtime's ``forward``, one NCHW image per call (as on a
    phone); the thread pool handling is the SDK's (``deepproduct.sdk.executorch_runtime``)."""
    from deepproduct.sdk.executorch_runtime import PteMethod

    try:
        method = PteMethod(path, threads)
    except Exception as exc:  # noqa: BLE001 - e.g. a Core ML delegate off Apple
        raise ExportError(f"{path}: the ExecuTorch runtime cannot load 'forward' "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    return np.concatenate([method(image[None]) for image in images_nchw]).astype(np.float32)
