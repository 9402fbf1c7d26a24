"""Bias correction of int8 convolutions (export/bias_correction.py): the formula by hand, and on
real quantised graphs (onnxruntime QDQ, PT2E) the systematic output error it exists to remove."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from deepproduct.export.bias_correction import ChannelMeans, apply_bias_shifts, weight_error_shift
from deepproduct.export.model_info import ModelInfo
from deepproduct.export.onnx.quantize import quantize_int8
from deepproduct.export.runtimes import run_onnx
from deepproduct.sdk.preprocessing import PreprocessingSpec
from deepproduct.training.checkpoint import embedding_space_id
from deepproduct.training.models import build_embedding_net


def test_shift_of_a_dense_conv_by_hand():
    # 2 outputs, 2 inputs, 1x2 kernel; input means 2 and -1.
    error = np.array([[[[0.1, 0.2]], [[0.0, -0.3]]],
                      [[[-0.1, 0.0]], [[0.5, 0.5]]]])
    mean = np.array([2.0, -1.0])
    # o0: (0.1 + 0.2) * 2 + (0 - 0.3) * -1 = 0.9;  o1: -0.1 * 2 + 1.0 * -1 = -1.2
    np.testing.assert_allclose(weight_error_shift(error, mean), [0.9, -1.2])


def test_shift_of_a_depthwise_conv_uses_each_channels_own_mean():
    error = np.array([[[[0.1, -0.3]]], [[[0.25, 0.25]]], [[[1.0, 0.0]]]])  # 3 channels, 1 input each
    mean = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(weight_error_shift(error, mean, groups=3), [-0.2, 1.0, 4.0])


def test_shift_rejects_a_mismatched_input():
    with pytest.raises(ValueError, match="does not fit"):
        weight_error_shift(np.zeros((4, 2, 1, 1)), np.zeros(3))


def test_channel_means_accumulate_over_batches():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 3, 4, 4)), rng.random((5, 3, 4, 4))
    means = ChannelMeans()
    means.add(a)
    means.add(b)
    np.testing.assert_allclose(means.mean(), np.concatenate([a, b]).mean(axis=(0, 2, 3)))
    with pytest.raises(ValueError, match="no activations"):
        ChannelMeans().mean()


def _tiny(tmp_path):
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
    return model, fp32, info, size


def test_onnx_correction_changes_only_int32_biases_and_cuts_the_systematic_error(tmp_path):
    model, fp32, info, size = _tiny(tmp_path)
    rng = np.random.default_rng(0)
    calib = rng.random((32, 3, size, size), dtype=np.float32)
    plain, corrected = tmp_path / "plain.onnx", tmp_path / "corrected.onnx"
    quantize_int8(fp32, plain, calib, info, bias_correction=False)
    quantize_int8(fp32, corrected, calib, info, bias_correction=True)
    a, b = onnx.load(str(plain)), onnx.load(str(corrected))
    changed = [onnx.numpy_helper.to_array(i) for i, j in zip(a.graph.initializer, b.graph.initializer, strict=True)
               if onnx.numpy_helper.to_array(i).tobytes() != onnx.numpy_helper.to_array(j).tobytes()]
    assert changed and all(t.dtype == np.int32 for t in changed)  # int32 biases only: weights untouched
    x = rng.random((48, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    bias_plain = np.linalg.norm((run_onnx(plain, x) - ref).mean(0))
    bias_corrected = np.linalg.norm((run_onnx(corrected, x) - ref).mean(0))
    assert bias_corrected < bias_plain


class _Holder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Module()
        self.inner.bias = nn.Parameter(torch.tensor([1.0, 2.0]))
        self.register_buffer("flat", torch.tensor([0.5]))

    def forward(self, x):
        return x + self.inner.bias.sum() + self.flat


def test_apply_bias_shifts_replaces_tensors_and_names_a_missing_bias():
    gm = torch.fx.symbolic_trace(_Holder())
    original = gm.inner.bias
    assert apply_bias_shifts(gm, {"inner.bias": np.array([0.25, -1.0]), "flat": np.array([0.5])}) == 2
    torch.testing.assert_close(gm.inner.bias.detach(), torch.tensor([0.75, 3.0]))
    torch.testing.assert_close(gm.flat, torch.tensor([0.0]))
    torch.testing.assert_close(original.detach(), torch.tensor([1.0, 2.0]))  # the old tensor is untouched
    with pytest.raises(ValueError, match="not in the graph"):
        apply_bias_shifts(gm, {"inner.nothing": np.zeros(1)})


def test_tflite_correction_cuts_the_systematic_error(tmp_path):
    from deepproduct.export.runtimes import nchw_to_nhwc, run_tflite
    from deepproduct.export.tflite.convert import export_tflite_int8

    model, _, _, size = _tiny(tmp_path)
    rng = np.random.default_rng(0)
    calib = nchw_to_nhwc(rng.random((16, 3, size, size), dtype=np.float32))
    plain, corrected = tmp_path / "plain.tflite", tmp_path / "corrected.tflite"
    export_tflite_int8(model, size, calib, plain, bias_correction=False)
    export_tflite_int8(model, size, calib, corrected, bias_correction=True)
    x = rng.random((48, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    bias_plain = np.linalg.norm((run_tflite(plain, nchw_to_nhwc(x)) - ref).mean(0))
    bias_corrected = np.linalg.norm((run_tflite(corrected, nchw_to_nhwc(x)) - ref).mean(0))
    assert bias_corrected < bias_plain
