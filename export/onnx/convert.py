"""PyTorch -> ONNX (fp32, and fp16 on request) with the dynamo exporter.

The dynamo exporter (``torch.onnx.export(dynamo=True)``) is the maintained path; the legacy
TorchScript exporter is deprecated. The graph takes ``image`` NCHW RGB in [0, 1] with a dynamic
batch axis and returns ``embedding``; normalisation is part of the model, so nothing else is
needed at run time. The manifest essentials travel in ``metadata_props``.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from ..converter_errors import translate
from ..model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo

MAX_BATCH = 1024


def export_onnx(model: torch.nn.Module, info: ModelInfo, path: Path) -> None:
    """Write the fp32 ONNX model to ``path`` and check it with ``onnx.checker`` (full check)."""
    example = torch.rand(1, 3, info.input_size, info.input_size)
    try:
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},),
            external_data=False, verbose=False,
        )
        program.save(str(path))
    except Exception as exc:  # converter errors -> a named op or the converter's message
        raise translate(exc, "onnx", "export") from exc
    proto = onnx.load(str(path))
    set_metadata(proto, info)
    proto.producer_name = "deepproduct"
    onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)


def set_metadata(proto: onnx.ModelProto, info: ModelInfo) -> None:
    props = dict(info.essentials())
    props.update({"author": info.author, "license": info.license, "description": info.description})
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = info.description
    proto.model_version = 1


def convert_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and compute, float32 input and output (``keep_io_types``)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load(str(src))
    half = convert_float_to_float16(proto, keep_io_types=True)
    topological_sort(half.graph)  # the converter appends its input casts after their consumers
    onnx.save(half, str(dst))
    onnx.checker.check_model(str(dst), full_check=True)


def opset_of(path: Path) -> int:
    proto = onnx.load(str(path), load_external_data=False)
    return max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("ONNX graph has a cycle or an undefined input: "
                             + ", ".join(sorted({i for n in pending for i in n.input if i not in available})[:5]))
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)
