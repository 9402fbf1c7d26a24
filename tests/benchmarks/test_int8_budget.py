"""``dp-bench int8-budget``: the graph surgery puts exactly the named tensors back in float.

The self-check that carries the rest: with weights and activations both back in float, the int8
graph must compute the fp32 graph's embedding (a missed quantiser or weight would show here).
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from click.testing import CliRunner
from support.export import legacy_onnx_export, model_info_of

from deepproduct.benchmarks.cli import main as dp_bench
from deepproduct.benchmarks.int8_budget import _embed, activation_groups, budget_models
from deepproduct.export.onnx.quantize import quantize_int8
from deepproduct.training.models import build_embedding_net


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_variants_remove_what_they_name_and_all_float_is_the_fp32_graph(tmp_path):
    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 16, "avg", pretrained=False).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_var.fill_(25.0)  # untrained, most ReLU6 outputs sit at 0 or 6, where int8 is exact
    torch.nn.init.zeros_(model.embed.bias)  # else the random bias outweighs the pooled features
    size = model.input_size
    fp32_path = legacy_onnx_export(model, tmp_path / "fp32.onnx", size)
    rng = np.random.default_rng(0)
    quantize_int8(fp32_path, tmp_path / "int8.onnx", rng.random((8, 3, size, size), dtype=np.float32),
                  model_info_of(model, name="t"))
    fp32, int8 = onnx.load(str(fp32_path)), onnx.load(str(tmp_path / "int8.onnx"))
    groups = activation_groups(int8, fp32)
    assert groups["relu6"] and groups["residual"]  # conv outputs after ReLU6; the normalised input
    variants = budget_models(int8, fp32)
    x = rng.random((6, 3, size, size), dtype=np.float32)
    reference = _embed(fp32, x, threads=1)
    gap = {name: float(np.abs(_embed(m, x, threads=1) - reference).max()) for name, m in variants.items()}
    assert gap["all_float"] < 1e-5  # nothing quantised is left ...
    assert gap["as_exported"] > 1e-4  # ... where int8 does differ
    cos = {name: _cos(_embed(m, x, threads=1), reference).mean() for name, m in variants.items()}
    assert cos["weights_float"] > cos["as_exported"] and cos["activations_float"] > cos["as_exported"]

    def quantisers(m: onnx.ModelProto) -> int:
        consts = {i.name for i in m.graph.initializer}
        return sum(n.op_type == "QuantizeLinear" and n.input[0] not in consts for n in m.graph.node)

    assert quantisers(variants["activations_float"]) == 0
    assert quantisers(variants["relu6_float"]) == quantisers(int8) - len(groups["relu6"])
    producer = {o: n.op_type for n in variants["weights_float"].graph.node for o in n.output}
    convs = [n for n in variants["weights_float"].graph.node if n.op_type == "Conv"]
    assert all(producer.get(c.input[1]) is None for c in convs)  # every weight an fp32 initializer


def test_an_export_without_an_int8_onnx_is_a_one_line_error(tiny_model_dir, tiny_manifest):
    r = CliRunner().invoke(dp_bench, ["int8-budget", str(tiny_model_dir), "--data", str(tiny_manifest)])
    assert r.exit_code == 1 and "needs an fp32 and an int8 ONNX artefact" in r.output, r.output
    assert "Traceback" not in r.output


# -- dp-bench head-sweep ---------------------------------------------------------------------------

def test_head_weight_spans_pca_to_whitening():
    from deepproduct.benchmarks.head_sweep import head_weight

    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2])
    mu, plain = head_weight(train, 4, power=0.0, shrink=0.0)
    np.testing.assert_allclose(plain @ plain.T, np.eye(4), atol=1e-9)  # orthonormal axes: plain PCA
    _, white = head_weight(train, 4, power=1.0, shrink=0.0)
    np.testing.assert_allclose(np.cov(((train - mu) @ white.T).T), np.eye(4), atol=1e-9)  # unit variance
    _, shrunk = head_weight(train, 4, power=1.0, shrink=1.0)
    gains = np.linalg.norm(shrunk, axis=1) / np.linalg.norm(white, axis=1)
    assert np.all(np.diff(gains) < 0)  # shrinkage holds the weak axes back most


def test_recall_at_1_counts_answerable_user_queries_against_shop_images():
    from deepproduct.benchmarks.head_sweep import recall_at_1

    emb = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1], [1, 1]], dtype=float)
    products = np.array(["a", "b", "a", "a", "z"])  # query 3 retrieves b's shot; "z" has no shop image
    domains = np.array(["shop", "shop", "user", "user", "user"])
    assert recall_at_1(emb / np.linalg.norm(emb, axis=1, keepdims=True), products, domains) == 0.5


def test_head_sweep_without_an_int8_onnx_is_a_one_line_error(tiny_model_dir, tiny_manifest):
    r = CliRunner().invoke(dp_bench, ["head-sweep", str(tiny_model_dir), "--data", str(tiny_manifest)])
    assert r.exit_code == 1 and "needs an fp32 and an int8 ONNX artefact" in r.output, r.output
