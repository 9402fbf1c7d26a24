"""ExecuTorch export: a tiny model to .pte, checked through the ExecuTorch runtime itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepproduct.export.errors import ExportError
from deepproduct.export.model_info import ModelInfo
from deepproduct.sdk.preprocessing import PreprocessingSpec
from deepproduct.training.checkpoint import embedding_space_id
from deepproduct.training.models import build_embedding_net

pytest.importorskip("executorch", reason="the executorch extra (make setup installs it)")
from deepproduct.export import executorch_lower as el  # noqa: E402


def _tiny(pooling: str = "avg", seed: int = 0):
    torch.manual_seed(seed)
    model = build_embedding_net("tiny_cnn", 16, pooling=pooling, pretrained=False).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    mean, std = model.normalisation
    info = ModelInfo(name="tiny", version="0", backbone="tiny_cnn", embedding_dim=16, input_size=model.input_size,
                     embedding_space_id=embedding_space_id(model), mean=tuple(mean), std=tuple(std),
                     preprocessing=PreprocessingSpec.for_input_size(model.input_size))
    return model, info


def _images(n: int, size: int, seed: int = 1) -> np.ndarray:
    # Smooth images (not white noise): closer to what the backbone sees, and to the real parity set.
    rng = np.random.default_rng(seed)
    low = rng.random((n, 3, size // 8, size // 8), dtype=np.float32)
    return np.ascontiguousarray(low.repeat(8, axis=2).repeat(8, axis=3))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_xnnpack_forms_compute_the_same_function():
    model, info = _tiny()
    x = torch.from_numpy(_images(3, info.input_size))
    with torch.no_grad():
        plain = model(x)
        with el.XnnpackForms():
            rewritten = model(x)
    assert torch.allclose(plain, rewritten, atol=1e-6)
    # and the forms are what is captured: no keepdim=False mean, no vector norm
    targets = {str(n.target) for n in el.capture(model, info.input_size).graph.nodes}
    assert "aten.linalg_vector_norm.default" not in targets and "aten.rsqrt.default" in targets


@pytest.mark.slow
def test_fp32_pte_runs_in_the_executorch_runtime(tmp_path):
    model, info = _tiny()
    path = tmp_path / "model_fp32.pte"
    summary = el.export_xnnpack_fp32(model, info, path)
    assert summary.fully_delegated and summary.backends == {el.XNNPACK: 1}
    assert summary.delegated_op_counts["aten.convolution.default"] == 3
    facts = el.pte_facts(path)
    assert facts["delegates"] == [el.XNNPACK] and facts["non_delegated_kernels"] == []
    assert {"forward", el.METADATA_METHOD, "input_name", "output_name"} <= set(facts["methods"])
    meta = el.read_metadata(path)
    assert meta["deepproduct.embedding_space_id"] == info.embedding_space_id
    images = _images(6, info.input_size)
    got = el.run_pte(path, images, threads=1)
    with torch.no_grad():
        want = model(torch.from_numpy(images)).numpy()
    assert got.shape == (6, 16)
    assert _cosine(got, want).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_int8_pte_quantises_every_backbone_conv(tmp_path):
    model, info = _tiny()
    path = tmp_path / "model_int8.pte"
    summary = el.export_xnnpack_int8(model, info, _images(16, info.input_size, seed=2), path)
    assert summary.fully_delegated
    counts = summary.delegated_op_counts
    # every conv gets per-channel int8 weights; the float head (linear) does not
    assert counts["quantized_decomposed.dequantize_per_channel.default"] == 3
    images = _images(8, info.input_size, seed=3)
    got = el.run_pte(path, images, threads=1)
    with torch.no_grad():
        want = model(torch.from_numpy(images)).numpy()
    assert _cosine(got, want).mean() >= 0.99
    assert _cosine(got, want).mean() < 0.999999  # really quantised, not a float copy


@pytest.mark.slow
def test_op_xnnpack_cannot_take_fails_naming_it(tmp_path):
    model, info = _tiny(pooling="gem")  # learnable-power GeM: pow(x, tensor) has no XNNPACK node
    with pytest.raises(ExportError) as err:
        el.export_xnnpack_fp32(model, info, tmp_path / "gem.pte")
    text = str(err.value)
    assert "pow.Tensor_Tensor" in text and "pooling.py" in text and "portable kernels" in text
    assert not (tmp_path / "gem.pte").exists()


def test_int8_needs_calibration_images(tmp_path):
    model, info = _tiny()
    with pytest.raises(ExportError, match="no calibration images"):
        el.export_xnnpack_int8(model, info, np.zeros((0, 3, 64, 64), np.float32), tmp_path / "x.pte")


def test_unreadable_pte_is_one_line_error(tmp_path):
    bad = tmp_path / "model_fp32.pte"
    bad.write_bytes(b"not a program")
    with pytest.raises(ExportError, match="model_fp32.pte: not a readable ExecuTorch program"):
        el.pte_facts(bad)
