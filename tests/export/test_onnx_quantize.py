"""ONNX int8: the stem convolution is turned back to float after quantisation (float_convs)."""

from __future__ import annotations

import numpy as np
import onnx
import torch

from deepproduct.export import parity
from deepproduct.export.model_info import ModelInfo
from deepproduct.export.onnx_quantize import float_convs, quantize_int8
from deepproduct.export.runtimes import run_onnx
from deepproduct.sdk.preprocessing import PreprocessingSpec
from deepproduct.training.checkpoint import embedding_space_id
from deepproduct.training.models import build_embedding_net


def test_stem_runs_in_float_and_the_rest_stays_int8(tmp_path):
    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 16, "avg", pretrained=False).eval()
    size = model.input_size
    fp32 = tmp_path / "fp32.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, size, size),), str(fp32), dynamo=False, input_names=["image"],
                      output_names=["embedding"], opset_version=17,
                      dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}})
    mean, std = model.normalisation
    info = ModelInfo(name="t", version="1", backbone="tiny_cnn", embedding_dim=16, input_size=size,
                     embedding_space_id=embedding_space_id(model), mean=tuple(mean), std=tuple(std),
                     preprocessing=PreprocessingSpec.for_input_size(size))
    calib = np.random.default_rng(0).random((8, 3, size, size), dtype=np.float32)
    int8 = tmp_path / "int8.onnx"
    quantize_int8(fp32, int8, calib, info)
    proto = onnx.load(str(int8))
    producer = {o: n for n in proto.graph.node for o in n.output}
    inits = {i.name for i in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    stem, rest = convs[0], convs[1:]
    assert producer[stem.input[0]].op_type == "Clip" and stem.input[1] in inits  # float weight, clamped input
    assert all(producer[c.input[1]].op_type == "DequantizeLinear" for c in rest)  # still int8
    onnx.checker.check_model(str(int8), full_check=True)
    x = np.random.default_rng(1).random((6, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert parity.cosines(run_onnx(int8, x), ref).mean() > 0.99
    before = len(proto.graph.node)
    float_convs(proto, [])  # nothing named: nothing changes
    assert len(proto.graph.node) == before
