"""ONNX fp32 -> int8: static QDQ, per-channel weights, calibrated on real-looking photos.

Choices measured on this CPU (docs/export.md, incl. its toolchain facts):
- ``quant_pre_process`` fails on these graphs' symbolic shape inference (``_infer_Expand``,
  ReduceL2 axes in opset >= 18), so it runs with ``skip_symbolic_shape=True``.
- u8 activations / s8 weights, full 8-bit range. ``reduce_range`` (7-bit weights) only helps x86
  CPUs without VNNI, whose u8 x s8 kernels saturate; on this VNNI machine it cost accuracy
  (EfficientNet-Lite0 mean cosine 0.960 with it, 0.987 without) and phones (ARM) never need it.
- ``quantize_dynamic`` on conv nets uses ConvInteger and was 10x slower: never used.
- Only the backbone is quantised; the head (pooling -> linear -> L2 normalisation) stays float.
  Its output is a unit 128-d vector whose components are ~0.09: 8-bit steps of ~0.008 there cost
  more cosine than the whole int8 backbone (EfficientNet-Lite0: 0.96 with the head quantised),
  and the head is a negligible share of the compute.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from ..model_info import INPUT_NAME, ModelInfo
from .convert import set_metadata


class _ArrayReader:
    """onnxruntime ``CalibrationDataReader`` over preprocessed NCHW images, one per batch."""

    def __init__(self, images: np.ndarray) -> None:
        self._images = images
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self._images):
            return None
        batch = self._images[self._i:self._i + 1]
        self._i += 1
        return {INPUT_NAME: batch}

    def rewind(self) -> None:
        self._i = 0


BACKBONE_SCOPE = "features"
REDUCE_RANGE = False


def head_nodes(proto: onnx.ModelProto) -> list[str]:
    """Nodes outside the backbone (``model.features``), from the exporter's name-scope metadata.

    Falls back to everything downstream of the last global pooling when the metadata is absent.
    """
    def scopes(node: onnx.NodeProto) -> list[str] | None:
        for prop in node.metadata_props:
            if prop.key.endswith("name_scopes"):
                return [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
        return None

    tagged = [(n, scopes(n)) for n in proto.graph.node]
    if all(sc is not None for _, sc in tagged):
        return [n.name for n, sc in tagged if BACKBONE_SCOPE not in (sc or [])]
    pools = [n for n in proto.graph.node if n.op_type in ("ReduceMean", "GlobalAveragePool")]
    if not pools:
        return []
    frontier = set(pools[-1].output)
    head = [pools[-1].name]
    for node in proto.graph.node:
        if frontier.intersection(node.input):
            head.append(node.name)
            frontier.update(node.output)
    return head


#: Activation-range calibration: onnxruntime's MinMax / Percentile / Entropy (docs/export.md has
#: the measured comparison on the demo checkpoint).
CALIBRATION_METHOD = "minmax"
PERCENTILE = 99.999
#: Backbone nodes left out of ``quantize_static`` (``nodes_to_exclude``). Measured worse than
#: quantising them (docs/export.md: the neighbours lose their fused ReLU6 ranges), so empty.
KEEP_FLOAT_NODES: tuple[str, ...] = ()
#: The first N convolutions (graph order: the stem first) are turned back to float *after*
#: quantisation (:func:`float_convs`). The sensitivity sweep (each conv alone in float) ranked the
#: stem first by far: +1.9e-4 mean cosine, the next +0.9e-4; with the stem in float the demo
#: checkpoint's ONNX int8 went from 0.99899 to 0.99915 at the same speed (docs/export.md).
FLOAT_LEADING_CONVS = 1
#: Subtract each int8 conv's mean output shift from its bias (export/bias_correction.py):
#: measured on the demo checkpoint, mean cosine 0.9928 -> 0.9973 (docs/export.md).
BIAS_CORRECTION = True


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray, info: ModelInfo, *,
                  method: str | None = None, keep_float: tuple[str, ...] | None = None,
                  bias_correction: bool | None = None) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader_cls = type("DeepProductCalibration", (_ArrayReader, CalibrationDataReader), {})
    images = calibration.astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="dp-onnx-q-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        float_proto = onnx.load(str(pre))
        exclude = head_nodes(float_proto) + list(KEEP_FLOAT_NODES if keep_float is None else keep_float)
        method = method or CALIBRATION_METHOD
        calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                     "entropy": CalibrationMethod.Entropy}[method]
        extra = {"CalibPercentile": PERCENTILE} if method == "percentile" else {}
        quantize_static(
            str(pre), str(dst), reader_cls(images),
            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=REDUCE_RANGE,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
            calibrate_method=calibrate, extra_options=extra,
        )
        proto = onnx.load(str(dst))
        float_convs(proto, [n.name for n in proto.graph.node if n.op_type == "Conv"][:FLOAT_LEADING_CONVS])
        if BIAS_CORRECTION if bias_correction is None else bias_correction:
            correct_biases(proto, float_proto, images)
    set_metadata(proto, info)
    onnx.save(proto, str(dst))
    onnx.checker.check_model(str(dst), full_check=True)


def conv_input_means(float_proto: onnx.ModelProto, images: np.ndarray, batch: int = 16) -> dict[str, np.ndarray]:
    """Per-channel mean of every Conv's input in the float model over ``images``, keyed by the
    Conv's weight initializer name (the same in the float and the quantised graph)."""
    import onnxruntime as ort
    from onnx import helper

    from ..bias_correction import ChannelMeans

    convs = [n for n in float_proto.graph.node if n.op_type == "Conv"]
    probe = onnx.ModelProto()
    probe.CopyFrom(float_proto)
    del probe.graph.output[:]
    inputs = list(dict.fromkeys(n.input[0] for n in convs))
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in inputs)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    means = {name: ChannelMeans() for name in inputs}
    for start in range(0, len(images), batch):
        for name, value in zip(inputs, session.run(inputs, {INPUT_NAME: images[start:start + batch]}), strict=True):
            means[name].add(value)
    return {n.input[1]: means[n.input[0]].mean() for n in convs}


def correct_biases(proto: onnx.ModelProto, float_proto: onnx.ModelProto, images: np.ndarray) -> int:
    """Bias-correct every Conv of the QDQ model ``proto`` whose weight and bias are int8/int32
    (export/bias_correction.py); returns how many were corrected. The int32 bias keeps its scale."""
    from onnx import numpy_helper

    from ..bias_correction import weight_error_shift

    float_weights = {i.name: i for i in float_proto.graph.initializer}
    means = conv_input_means(float_proto, images)
    inits = {i.name: i for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    corrected = 0
    for conv in (n for n in proto.graph.node if n.op_type == "Conv" and len(n.input) > 2):
        w_dq, b_dq = producer.get(conv.input[1]), producer.get(conv.input[2])
        if not (w_dq and b_dq and w_dq.op_type == b_dq.op_type == "DequantizeLinear"):
            continue  # a float conv (float_convs) or an unexpected pattern: nothing to correct
        name = w_dq.input[0].removesuffix("_quantized")
        if name not in float_weights or name not in means or len(w_dq.input) < 3:
            continue
        w = numpy_helper.to_array(float_weights[name]).astype(np.float64)
        q = numpy_helper.to_array(inits[w_dq.input[0]]).astype(np.float64)
        shape = (-1,) + (1,) * (q.ndim - 1)
        scale = numpy_helper.to_array(inits[w_dq.input[1]]).astype(np.float64).reshape(shape)
        zero = numpy_helper.to_array(inits[w_dq.input[2]]).astype(np.float64).reshape(shape)
        groups = next((a.i for a in conv.attribute if a.name == "group"), 1)
        shift = weight_error_shift((q - zero) * scale - w, means[name], groups)
        bias_q = numpy_helper.to_array(inits[b_dq.input[0]]).astype(np.float64)
        bias_scale = numpy_helper.to_array(inits[b_dq.input[1]]).astype(np.float64)
        info = np.iinfo(np.int32)
        new = np.clip(np.round(bias_q - shift / bias_scale), info.min, info.max).astype(np.int32)
        inits[b_dq.input[0]].CopyFrom(numpy_helper.from_array(new, b_dq.input[0]))
        corrected += 1
    return corrected


def float_convs(proto: onnx.ModelProto, names: list[str]) -> None:
    """Run the named Convs of a QDQ model in float: dequantised weights and bias as float
    initializers, and the input's Quantize/Dequantize pair replaced by a Clip to the same range.

    Why a Clip: onnxruntime's QDQ quantiser folds a ReLU6 into the range of the Quantize that
    follows it, so that range *is* the activation; only the 8-bit rounding is dropped.
    """
    from onnx import helper, numpy_helper

    for name in names:
        nodes = list(proto.graph.node)
        producer = {o: n for n in nodes for o in n.output}
        inits = {i.name: i for i in proto.graph.initializer}
        at, conv = next((i, n) for i, n in enumerate(nodes) if n.name == name)
        added: list[onnx.NodeProto] = []
        for k, tensor in enumerate(list(conv.input)):
            dq = producer.get(tensor)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            source = dq.input[0]
            zero_point = dq.input[2] if len(dq.input) > 2 else ""
            if source in inits:  # weight or bias
                q = numpy_helper.to_array(inits[source]).astype(np.float64)
                scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
                zp = numpy_helper.to_array(inits[zero_point]).astype(np.float64) if zero_point else 0.0
                if np.ndim(scale) == 1 and q.ndim > 1:
                    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                    shape = [1] * q.ndim
                    shape[axis] = -1
                    scale, zp = scale.reshape(shape), np.reshape(zp, shape) if np.ndim(zp) else zp
                float_name = f"{source}_float"
                proto.graph.initializer.append(numpy_helper.from_array(((q - zp) * scale).astype(np.float32),
                                                                       float_name))
                conv.input[k] = float_name
                continue
            quant = producer.get(source)
            if quant is None or quant.op_type != "QuantizeLinear":
                continue
            scale = float(numpy_helper.to_array(inits[quant.input[1]]))
            zp_name = quant.input[2] if len(quant.input) > 2 else ""
            zp_array = numpy_helper.to_array(inits[zp_name]) if zp_name else np.zeros((), np.uint8)
            info = np.iinfo(zp_array.dtype)
            zp = float(zp_array)
            low, high, clipped = (f"{quant.input[0]}_{t}_float" for t in ("low", "high", "clipped"))
            proto.graph.initializer.extend([numpy_helper.from_array(np.array((info.min - zp) * scale, np.float32), low),
                                            numpy_helper.from_array(np.array((info.max - zp) * scale, np.float32), high)])
            added.append(helper.make_node("Clip", [quant.input[0], low, high], [clipped], name=f"{name}_input_clip"))
            conv.input[k] = clipped
        nodes[at:at] = added
        del proto.graph.node[:]
        proto.graph.node.extend(nodes)
    outputs = {o.name for o in proto.graph.output}
    while True:  # drop the Quantize/Dequantize nodes nothing reads any more
        used = {i for n in proto.graph.node for i in n.input} | outputs
        live = [n for n in proto.graph.node if any(o in used for o in n.output)]
        if len(live) == len(proto.graph.node):
            break
        del proto.graph.node[:]
        proto.graph.node.extend(live)
    keep = [i for i in proto.graph.initializer if i.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
