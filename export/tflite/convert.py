"""PyTorch -> TFLite with litert-torch (no TensorFlow): fp32, and int8 through PT2E.

- NHWC input via ``litert_torch.to_channel_last_io``: the permute folds into the first conv, so
  no TRANSPOSE op is left and MediaPipe / the Task Library can feed the camera image directly.
- int8 is PyTorch PT2E static quantisation (per-channel weights, histogram-calibrated
  activations) with litert-torch's ``PT2EQuantizer``; the input and output stay float32, which is
  what MediaPipe's and the Task Library's ImageEmbedder accept with mean 0 / std 255 metadata.
  Dynamic-range int8 measured 2x slower than fp32 on this x86 CPU (XNNPACK partitions), and
  ai-edge-quantizer's output (op versions left at v1, external weight buffers) gave silently wrong
  embeddings in tflite-support's runtime, so neither is used.
- Only the backbone (``model.features``) is annotated for quantisation; the head (pooling ->
  linear -> L2 normalisation) stays float: 8-bit steps on a unit 128-d vector cost more cosine
  than the whole int8 backbone (EfficientNet-Lite0: 0.86 with the head quantised, see
  docs/export.md). Activation ranges come from min/max observers: as accurate as the histogram
  observer here (ReLU6 bounds the activations) and 30x faster to calibrate.
- After conversion the flatbuffer is re-serialised with every buffer inline (the metadata writer
  drops external buffers) and the I/O tensors renamed ``image`` / ``embedding``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..bias_correction import apply_bias_shifts, pt2e_bias_shifts
from ..converter_errors import translate
from ..model_info import INPUT_NAME, OUTPUT_NAME


def _nhwc(model: torch.nn.Module) -> torch.nn.Module:
    import litert_torch

    return litert_torch.to_channel_last_io(model, args=[0]).eval()


def export_tflite_fp32(model: torch.nn.Module, input_size: int, path: Path) -> None:
    import litert_torch

    example = torch.rand(1, input_size, input_size, 3)
    try:
        edge = litert_torch.convert(_nhwc(model), (example,))
        edge.export(str(path))
    except Exception as exc:
        raise translate(exc, "tflite", "conversion") from exc
    finalise_flatbuffer(path)


WEIGHT_EPS = 1e-12


#: Activation observer for PT2E calibration: "minmax" or "histogram" (docs/export.md has the
#: measured comparison on the demo checkpoint).
ACTIVATION_OBSERVER = "minmax"
#: Backbone module paths (under ``features``) kept in float: the stem (timm's ``conv_stem`` +
#: ``bn1``; tiny_cnn's ``stem``), the layer the sensitivity sweep ranked first by far (docs/export.md:
#: demo checkpoint TFLite int8 mean cosine 0.99900 -> 0.99905). Paths a backbone lacks match nothing.
KEEP_FLOAT_MODULES: tuple[str, ...] = ("model.conv_stem", "model.bn1", "stem")
#: Subtract each int8 conv's mean output shift from its bias after calibration
#: (export/bias_correction.py; docs/export.md has the measured gain).
BIAS_CORRECTION = True


def backbone_quantizer(prefix: str = "wrapped.features", observer: str | None = None,
                       keep_float: tuple[str, ...] | None = None):
    """litert-torch's PT2E quantizer restricted to the backbone's nodes (by module path).

    ``keep_float``: module paths relative to the backbone (e.g. ``blocks.0``) left unannotated,
    so they run in float.
    """
    import dataclasses

    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.pt2e_quantizer_utils import propagate_annotation
    from torchao.quantization.pt2e.observer import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver

    observer = observer or ACTIVATION_OBSERVER
    skip = tuple(f"{prefix}.{k}" for k in (KEEP_FLOAT_MODULES if keep_float is None else keep_float))
    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
    act_observer = {"minmax": MinMaxObserver, "histogram": HistogramObserver}[observer]
    act = dataclasses.replace(config.input_activation,
                              observer_or_fake_quant_ctr=act_observer.with_args(eps=2**-12))
    # litert-torch's default floors every weight scale at eps = 2**-12, i.e. channels whose
    # largest folded weight is below 127 * 2**-12 = 0.031 get steps far coarser than their range.
    weight = dataclasses.replace(config.weight,
                                 observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=WEIGHT_EPS))
    config = dataclasses.replace(config, input_activation=act, output_activation=act, weight=weight)

    def in_backbone(node) -> bool:
        # Annotators reject a pattern if any of its nodes fails the filter; weights (get_attr) and
        # placeholders carry no module stack, so they are neutral.
        stack = node.meta.get("nn_module_stack", {}) or {}
        if not stack:
            return True
        paths = [str(path) for path, _ in stack.values()]
        if skip and any(p == k or p.startswith(k + ".") for p in paths for k in skip):
            return False
        return any(p == prefix or p.startswith(prefix + ".") for p in paths)

    class BackboneQuantizer(pt2e_quantizer.PT2EQuantizer):
        def annotate(self, model):
            annotate_conv_hardtanh(model, self.global_config, in_backbone)
            self._annotate_all_static_patterns(model, self.global_config, in_backbone)
            propagate_annotation(model)
            return model

    return BackboneQuantizer().set_global(config)


def annotate_conv_hardtanh(gm, config, filter_fn) -> None:
    """Annotate conv -> ReLU6 (``hardtanh``) as one fused pattern, observed after the ReLU6.

    litert-torch's annotators fuse conv + ``relu`` only; with ReLU6 the conv output was observed
    on its own, over the wide pre-activation range, and requantised after the clamp. That cost
    EfficientNet-Lite0 (ReLU6 everywhere) 0.14 of mean cosine (0.855 -> see docs/export.md).
    Mirrors litert-torch's ``_annotate_conv_relu``.
    """
    from litert_torch.quantize.pt2e_quantizer_utils import (
        _is_annotated,
        _mark_nodes_as_annotated,
        get_bias_qspec,
        get_input_act_qspec,
        get_output_act_qspec,
        get_weight_qspec,
    )
    from torch.fx import Node
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    convs = (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default)
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in (torch.ops.aten.hardtanh.default,
                                                             torch.ops.aten.hardtanh_.default):
            continue
        conv = node.args[0]
        if not isinstance(conv, Node) or conv.op != "call_function" or conv.target not in convs:
            continue
        if len(conv.users) != 1:
            continue
        qmap = {conv.args[0]: get_input_act_qspec(config), conv.args[1]: get_weight_qspec(config)}
        partition = [node, conv, conv.args[1]]
        bias = conv.args[2] if len(conv.args) > 2 else None
        if isinstance(bias, Node):
            qmap[bias] = get_bias_qspec(config)
            partition.append(bias)
        if _is_annotated(partition) or any(not filter_fn(n) for n in partition):
            continue
        conv.meta["quantization_annotation"] = QuantizationAnnotation(input_qspec_map=qmap, _annotated=True)
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            output_qspec=get_output_act_qspec(config), _annotated=True)
        _mark_nodes_as_annotated(partition)


def export_tflite_int8(model: torch.nn.Module, input_size: int, calibration_nhwc: np.ndarray,
                       path: Path, *, observer: str | None = None, keep_float: tuple[str, ...] | None = None,
                       bias_correction: bool | None = None) -> None:
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    example = torch.rand(1, input_size, input_size, 3)
    try:
        captured = torch.export.export(_nhwc(model), (example,)).module()
        quantizer = backbone_quantizer(observer=observer, keep_float=keep_float)
        prepared = quantize_pt2e.prepare_pt2e(captured, quantizer)
        # An exported graph module does not follow .eval(): without this, calibration runs batch
        # norms in training mode (batch statistics of one image, running stats overwritten), which
        # cost EfficientNet-Lite0 int8 0.14 of mean cosine.
        prepared = move_exported_model_to_eval(prepared)
        with torch.no_grad():
            for image in calibration_nhwc:
                prepared(torch.from_numpy(np.ascontiguousarray(image[None])))
        converted = move_exported_model_to_eval(quantize_pt2e.convert_pt2e(prepared, fold_quantize=False))
        if BIAS_CORRECTION if bias_correction is None else bias_correction:
            apply_bias_shifts(converted, pt2e_bias_shifts(
                converted, (torch.from_numpy(np.ascontiguousarray(image[None])) for image in calibration_nhwc)))
        edge = litert_torch.convert(converted, (example,),
                                    quant_config=QuantConfig(pt2e_quantizer=quantizer))
        edge.export(str(path))
    except Exception as exc:
        raise translate(exc, "tflite", "int8 conversion") from exc
    finalise_flatbuffer(path)


def finalise_flatbuffer(path: Path) -> None:
    """Inline every buffer and name the I/O tensors ``image`` / ``embedding``."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model(str(path))  # resolves offset buffers into inline data
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise RuntimeError(f"expected one input and one output, got {len(graph.inputs)}/{len(graph.outputs)}")
    graph.tensors[graph.inputs[0]].name = INPUT_NAME.encode()
    graph.tensors[graph.outputs[0]].name = OUTPUT_NAME.encode()
    for sig in model.signatureDefs or []:
        for tensor_map in sig.inputs or []:
            tensor_map.name = INPUT_NAME.encode()
        for tensor_map in sig.outputs or []:
            tensor_map.name = OUTPUT_NAME.encode()
    fb.write_model(model, str(path))


def op_names(path: Path) -> list[str]:
    """Names of the builtin ops in the file (used to assert no TRANSPOSE is left)."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model(str(path))
    names = []
    for op in model.subgraphs[0].operators:
        names.append(fb.opcode_to_name(model, op.opcodeIndex) or "?")
    return names
