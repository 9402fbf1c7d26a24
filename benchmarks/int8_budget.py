"""``dp-bench int8-budget``: where an int8 ONNX model's distance from fp32 comes from.

Why this exists: the mean cosine of an int8 export to its fp32 twin is one number; what can be
done about it depends on which quantised tensors it comes from. Each variant here puts one group
of tensors of the exported int8 graph back in float -- by graph surgery on the file ``dp-export``
wrote, nothing re-quantised -- and scores it against the fp32 artefact on the same images:

- ``weights_float``: every int8 conv's weight and bias replaced by the fp32 graph's (so only the
  activations stay int8);
- ``residual_float``: the activations that no ReLU6 bounds (projection-conv outputs and residual
  additions: the "residual stream") taken out of int8;
- ``relu6_float``: the activations after a ReLU6 taken out of int8 (the clamp, which the int8 graph
  folds into its quantiser's range, is put back as a ``Clip``);
- ``activations_float``: both, so only the weights stay int8;
- ``all_float``: weights and activations -- a self-check: it must score 1.0 (to float rounding).

``1 - cos`` of the variants says which half is worth working on: if the weights alone or the
activations alone already cost more than a target allows, no setting of the other can reach it
(docs/export.md, "What is still short"). The surgery relies on onnxruntime's QDQ naming: an int8
weight ``W_quantized`` dequantises to the fp32 graph's ``W``, a bias dequantises to a tensor of the
fp32 bias's name, and each activation quantiser reads the fp32 graph's tensor of the same name.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from deepproduct.export.parity import cosines
from deepproduct.sdk.dataset_manifest import read_dataset_manifest
from deepproduct.sdk.model_manifest import load_model_manifest
from deepproduct.sdk.preprocessing import preprocess_batch

VARIANTS = ("as_exported", "weights_float", "residual_float", "relu6_float", "activations_float", "all_float")


class BudgetError(ValueError):
    """An export this analysis cannot read (no fp32/int8 ONNX pair, or an unexpected graph)."""


def _topological(model: onnx.ModelProto) -> None:
    """Re-sort ``model.graph.node`` so every node follows its inputs' producers (surgery appends)."""
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending, ordered = list(model.graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise BudgetError("the int8 graph has a node whose inputs nothing produces")
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if n not in ready]
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def _is_range_clip(node: onnx.NodeProto) -> bool:
    """The ``Clip`` that ``onnx.quantize.float_convs`` leaves where a float conv's input quantiser was."""
    return node.op_type == "Clip" and node.name.endswith("_input_clip")


def activation_groups(int8: onnx.ModelProto, fp32: onnx.ModelProto) -> dict[str, list[str]]:
    """Names of the activation quantisers (``QuantizeLinear`` nodes, and the range ``Clip`` a float
    conv's input keeps), by what the fp32 graph computes there: ``relu6`` (the tensor is a
    ``Clip``'s output) or ``residual`` (anything else)."""
    constants = {i.name for i in int8.graph.initializer}
    fp32_producer = {o: n.op_type for n in fp32.graph.node for o in n.output}
    groups: dict[str, list[str]] = {"relu6": [], "residual": []}
    for node in int8.graph.node:
        if (node.op_type == "QuantizeLinear" and node.input[0] not in constants) or _is_range_clip(node):
            kind = "relu6" if fp32_producer.get(node.input[0]) == "Clip" else "residual"
            groups[kind].append(node.name)
    return groups


def float_activations(int8: onnx.ModelProto, fp32: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of ``int8`` with the named activation quantisers (and their dequantisers) removed;
    where the fp32 graph clamps the tensor (a folded ReLU6), the same ``Clip`` is put back."""
    model = copy.deepcopy(int8)
    clips = {n.output[0]: n for n in fp32.graph.node if n.op_type == "Clip"}
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    for node in fp32.graph.node:  # the legacy exporter writes Clip bounds as Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            tensor = copy.deepcopy(node.attribute[0].t)
            tensor.name = node.output[0]
            fp32_inits.setdefault(node.output[0], tensor)
    have = {i.name for i in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    by_name = {n.name: n for n in model.graph.node}
    drop: list[onnx.NodeProto] = []
    for qname in names:
        quant = by_name[qname]
        source = quant.input[0]
        replacement = source
        if source in clips:
            clip = clips[source]
            for bound in clip.input[1:]:
                if bound and bound not in have:
                    if bound not in fp32_inits:
                        raise BudgetError(f"the fp32 Clip of {source} has a bound ({bound}) that is not a constant")
                    model.graph.initializer.append(copy.deepcopy(fp32_inits[bound]))
                    have.add(bound)
            replacement = f"{source}__float_clip"
            model.graph.node.append(helper.make_node("Clip", [source, *clip.input[1:]], [replacement],
                                                     name=f"{qname}__float_clip"))
        if _is_range_clip(quant):
            for user in consumers.get(quant.output[0], []):
                user.input[:] = [replacement if i == quant.output[0] else i for i in user.input]
            drop.append(quant)
            continue
        for dequant in consumers.get(quant.output[0], []):
            if dequant.op_type != "DequantizeLinear":
                raise BudgetError(f"quantiser {qname} feeds a {dequant.op_type}, not a DequantizeLinear")
            for user in consumers.get(dequant.output[0], []):
                user.input[:] = [replacement if i == dequant.output[0] else i for i in user.input]
            if any(o.name == dequant.output[0] for o in model.graph.output):
                raise BudgetError(f"quantiser {qname} produces a graph output")
            drop.append(dequant)
        drop.append(quant)
    for node in drop:
        model.graph.node.remove(node)
    _topological(model)
    return model


def float_weights(int8: onnx.ModelProto, fp32: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``int8`` whose convolutions read the fp32 graph's weights and biases."""
    model = copy.deepcopy(int8)
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    added: set[str] = set()
    replaced = 0
    int8_inits = {i.name for i in model.graph.initializer}
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        for slot in (1, 2):
            if slot >= len(conv.input):
                continue
            dequant = producer.get(conv.input[slot])
            if conv.input[slot] in int8_inits and conv.input[slot].endswith("_quantized_float"):
                name = conv.input[slot].removesuffix("_quantized_float")  # float_convs: int8-grid values
            elif dequant is not None and dequant.op_type == "DequantizeLinear":
                name = dequant.input[0].removesuffix("_quantized") if slot == 1 else dequant.output[0]
            else:
                continue
            if name not in fp32_inits:
                raise BudgetError(f"no fp32 tensor {name!r} for {conv.name}'s int8 {'weight' if slot == 1 else 'bias'}")
            float_name = f"{name}__fp32"
            if float_name not in added:
                tensor = copy.deepcopy(fp32_inits[name])
                tensor.name = float_name
                model.graph.initializer.append(tensor)
                added.add(float_name)
            conv.input[slot] = float_name
            replaced += 1
    if not replaced:
        raise BudgetError("the int8 graph has no int8 convolution weights")
    onnx.checker.check_model(model)  # dangling dequantisers are harmless; a broken graph is not
    return model


def budget_models(int8: onnx.ModelProto, fp32: onnx.ModelProto,
                  groups: dict[str, list[str]] | None = None) -> dict[str, onnx.ModelProto]:
    """Every variant of :data:`VARIANTS`, as ONNX models (``groups``: :func:`activation_groups`)."""
    groups = groups or activation_groups(int8, fp32)
    weights = float_weights(int8, fp32)
    everything = groups["relu6"] + groups["residual"]
    return {
        "as_exported": int8,
        "weights_float": weights,
        "residual_float": float_activations(int8, fp32, groups["residual"]),
        "relu6_float": float_activations(int8, fp32, groups["relu6"]),
        "activations_float": float_activations(int8, fp32, everything),
        "all_float": float_activations(weights, fp32, everything),
    }


def onnx_session(model: onnx.ModelProto, threads: int, optimise: bool = False):
    """An onnxruntime CPU session of ``model``, node by node unless ``optimise``.

    Node by node is what the surgery's variants need: onnxruntime's optimisers, given int8
    activations around float-weight convolutions, computed wrong results (cosine 0.91 where
    node-by-node gives 0.998). The int8 model as exported moves by < 1e-4 of cosine between the modes.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # the surgery leaves unused initializers; ORT warns about each
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_session(session, images: np.ndarray, output: str | None = None, batch: int = 32) -> np.ndarray:
    """``output`` (default: the first) of ``session`` for every image, ``batch`` per call."""
    feed = session.get_inputs()[0].name
    output = output or session.get_outputs()[0].name
    return np.concatenate([session.run([output], {feed: images[i:i + batch]})[0]
                           for i in range(0, len(images), batch)])


def _embed(model: onnx.ModelProto, images: np.ndarray, threads: int, batch: int = 32) -> np.ndarray:
    return run_session(onnx_session(model, threads), images, batch=batch)


def split_images(data: str | Path, split: str, spec, every: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preprocessed NCHW images, product ids, domains) of every ``every``-th row of ``split``."""
    dataset = read_dataset_manifest(data)
    rows = dataset.select(split=split)[::max(1, every)]
    if not rows:
        raise BudgetError(f"{data}: no rows with split={split}")
    images = preprocess_batch([dataset.abspath(r) for r in rows], spec)
    return images, np.array([r.product_id for r in rows]), np.array([r.domain for r in rows])


def onnx_pair(export_dir: Path, manifest) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The export's fp32 and int8 ONNX graphs (a clear error when either is missing)."""
    files = {a.precision: a.file for a in manifest.artefacts if a.format == "onnx"}
    if "fp32" not in files or "int8" not in files:
        raise BudgetError(f"{export_dir}: needs an fp32 and an int8 ONNX artefact (dp-export --formats onnx "
                          f"--quantize none,int8); found {sorted(files) or 'none'}")
    return onnx.load(str(export_dir / files["fp32"])), onnx.load(str(export_dir / files["int8"]))


def int8_budget(export_dir: str | Path, data: str | Path, split: str = "test", every: int = 1,
                threads: int = 2) -> dict[str, Any]:
    """Cosine to the fp32 ONNX artefact of each variant, on every ``every``-th image of ``split``."""
    export_dir = Path(export_dir)
    manifest = load_model_manifest(export_dir)
    fp32, int8 = onnx_pair(export_dir, manifest)
    images, _, _ = split_images(data, split, manifest.preprocessing, every)
    reference = _embed(fp32, images, threads)
    result: dict[str, Any] = {"export": str(export_dir), "data": str(data), "split": split, "images": len(images),
                              "variants": {}}
    groups = activation_groups(int8, fp32)
    for name, model in budget_models(int8, fp32, groups).items():
        cos = cosines(_embed(model, images, threads), reference)
        result["variants"][name] = {"mean_cos": float(cos.mean()), "min_cos": float(cos.min()),
                                    "one_minus_cos": float(1 - cos.mean())}
    result["quantisers"] = {k: len(v) for k, v in groups.items()}
    return result


def budget_table(result: dict[str, Any]) -> str:
    """Markdown: one row per variant, with the share of the int8 model's 1 - cos it removes."""
    base = result["variants"]["as_exported"]["one_minus_cos"]
    lines = [f"int8 error budget: {result['export']}, {result['images']} images of split {result['split']} "
             f"({result['quantisers']['residual']} residual-stream and {result['quantisers']['relu6']} "
             "post-ReLU6 activation quantisers)", "",
             "| variant | mean cos | min cos | 1 - cos | removed |", "| --- | --- | --- | --- | --- |"]
    for name, v in result["variants"].items():
        removed = (1 - v["one_minus_cos"] / base) if base > 0 else 0.0
        lines.append(f"| {name} | {v['mean_cos']:.5f} | {v['min_cos']:.4f} | {v['one_minus_cos']:.2e} | "
                     f"{100 * removed:.0f}% |")
    return "\n".join(lines)

