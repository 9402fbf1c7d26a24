"""Size on disk, parameter count and MACs of an artefact, counted offline.

MACs come from the ONNX graph itself (shape inference at batch 1, then Conv/Gemm/MatMul and
their quantised forms), so the count describes exactly the network that was exported, after
batch-norm folding, and needs no network access; thop on the PyTorch model is the fallback
when an export has no ONNX file. Element-wise ops are not counted (they are bandwidth, not
MACs), the same convention as thop's conv/linear counters and the papers' figures.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

#: op type -> (index of the activation input, index of the weight input, index of the bias input)
_WEIGHTED_OPS = {
    "Conv": (0, 1, 2), "ConvInteger": (0, 1, None), "QLinearConv": (0, 3, 8),
    "Gemm": (0, 1, 2), "MatMul": (0, 1, None), "MatMulInteger": (0, 1, None), "QLinearMatMul": (0, 3, None),
}


@dataclass(frozen=True)
class ModelCounts:
    params: int | None
    macs: int | None
    source: str  # "onnx-graph:<file>" | "thop" | "unavailable"


def onnx_graph_counts(path: str | os.PathLike) -> ModelCounts:
    """Parameters of the weighted ops and their MACs for one image (batch fixed to 1)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    for inp in graph.input:
        if inp.name in init_names:
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    del graph.value_info[:]
    for out in graph.output:
        out.type.tensor_type.shape.ClearField("dim")
    graph = onnx.shape_inference.infer_shapes(model).graph

    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in graph.initializer}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.dim_value > 0 for d in dims):
            shapes.setdefault(vi.name, [d.dim_value for d in dims])
    producer = {o: n for n in graph.node for o in n.output}

    def source_initializer(name: str) -> str | None:
        # Follow DequantizeLinear / Cast / Identity / Transpose back to the stored weight.
        seen = 0
        while name not in init_names and name in producer and seen < 8:
            node = producer[name]
            if node.op_type not in ("DequantizeLinear", "Cast", "Identity", "Transpose", "Reshape"):
                return None
            name = node.input[0]
            seen += 1
        return name if name in init_names else None

    params = 0
    macs = 0
    counted: set[str] = set()
    for node in graph.node:
        spec = _WEIGHTED_OPS.get(node.op_type)
        if spec is None:
            continue
        a_idx, w_idx, b_idx = spec
        out_shape = shapes.get(node.output[0])
        a_shape = shapes.get(node.input[a_idx]) if len(node.input) > a_idx else None
        w_shape = shapes.get(node.input[w_idx]) if len(node.input) > w_idx else None
        if out_shape is None or w_shape is None:
            continue
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            macs += math.prod(out_shape) * math.prod(w_shape[1:])
        else:
            trans_a = any(a.name == "transA" and a.i for a in node.attribute)
            k = (a_shape[-2] if trans_a else a_shape[-1]) if a_shape else w_shape[0]
            macs += math.prod(out_shape) * k
        for idx in (w_idx, b_idx):
            if idx is None or len(node.input) <= idx or not node.input[idx]:
                continue
            src = source_initializer(node.input[idx])
            if src is not None and src not in counted:
                counted.add(src)
                params += math.prod(shapes[src])
    return ModelCounts(params=params, macs=macs, source=f"onnx-graph:{Path(path).name}")


def thop_counts(checkpoint: str | os.PathLike) -> ModelCounts:
    """thop's MACs on the PyTorch model at its input size; parameters of the exported part only."""
    import thop
    import torch

    from deepproduct.training.checkpoint import load_model

    model, cfg = load_model(checkpoint)
    size = int(cfg.get("input_size") or model.input_size)
    macs, _ = thop.profile(model, inputs=(torch.rand(1, 3, size, size),), verbose=False)
    params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("classifier."))
    return ModelCounts(params=int(params), macs=int(macs), source="thop")


def model_counts(onnx_paths: list[Path], checkpoint: str | os.PathLike | None) -> ModelCounts:
    """The network's counts: from the first ONNX file that can be analysed, else thop, else none."""
    for path in onnx_paths:
        try:
            return onnx_graph_counts(path)
        except Exception:  # a graph shape inference cannot handle: try the next source
            continue
    if checkpoint is not None:
        try:
            return thop_counts(checkpoint)
        except Exception:
            pass
    return ModelCounts(params=None, macs=None, source="unavailable")
