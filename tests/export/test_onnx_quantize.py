"""ONNX int8: the stem convolution is turned back to float after quantisation (float_convs)."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from support.export import legacy_onnx_export, model_info_of

from deepproduct.export import parity
from deepproduct.export.onnx.quantize import float_convs, quantize_int8
from deepproduct.export.runtimes import run_onnx
from deepproduct.training.models import build_embedding_net


def test_stem_runs_in_float_and_the_rest_stays_int8(tmp_path):
    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 16, "avg", pretrained=False).eval()
    size = model.input_size
    fp32 = legacy_onnx_export(model, tmp_path / "fp32.onnx", size)
    info = model_info_of(model, name="t")
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
