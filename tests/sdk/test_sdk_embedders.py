"""Embedders honour the manifest; ProductSearch refuses a mismatched pair; the SDK runs without torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support.tiny_model import FIXTURE_DIM, build_tiny_model, make_tiny_module, write_catalogue

from deepproduct.sdk.embedders import EmbedderError, OnnxEmbedder, load_embedder
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import EmbeddingSpaceMismatchError
from deepproduct.sdk.model_manifest import ManifestError, sha256_file
from deepproduct.sdk.preprocessing import ImageDecodeError
from deepproduct.sdk.search import ProductSearch, recall_at_k


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    return root, write_catalogue(root, products=4, per_product=2)


def test_onnx_embedder_outputs_unit_vectors_batch_invariant(tiny_model_dir, catalogue):
    _, items = catalogue
    emb = load_embedder(tiny_model_dir, threads=1)
    assert isinstance(emb, OnnxEmbedder) and emb.dim == FIXTURE_DIM
    paths = [p for p, _, _ in items]
    many = emb.embed_paths(paths, batch_size=3, progress=False)
    assert many.shape == (len(paths), FIXTURE_DIM) and many.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-6)
    one = emb.embed([paths[4]])
    np.testing.assert_allclose(one[0], many[4], atol=1e-5)
    pre = emb.preprocess(paths[4])
    np.testing.assert_allclose(emb.embed(pre), one, atol=1e-6)
    assert emb.embed([]).shape == (0, FIXTURE_DIM)
    same = load_embedder(tiny_model_dir / "model.onnx")  # one artefact file next to its manifest
    np.testing.assert_allclose(same.embed([paths[0]]), many[:1], atol=1e-6)


def test_embed_report_and_bad_images(tiny_model_dir, catalogue, tmp_path):
    _, items = catalogue
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    emb = load_embedder(tiny_model_dir)
    report = emb.embed_report([items[0][0], broken, items[1][0]], progress=False)
    assert report.ok_indices.tolist() == [0, 2] and report.embeddings.shape == (2, FIXTURE_DIM)
    assert report.failures[0][0] == str(broken)
    with pytest.raises(ImageDecodeError, match="broken.png"):
        emb.embed_paths([items[0][0], broken], progress=False)


def _copy_model(src: Path, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for key, value in changes.items():
        if key == "embedding_dim":
            manifest["model"]["embedding_dim"] = value
        elif key == "sha256":
            manifest["artefacts"][0]["sha256"] = value
        else:
            manifest[key] = value
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.mark.parametrize("make, problem", [
    (lambda s: np.zeros((2, s, s, 3), np.float32), r"shape \(2, {s}, {s}, 3\); this model takes NCHW batches of "
                                                   r"shape \(N, 3, {s}, {s}\)"),
    (lambda s: np.zeros((3, s + 1, s), np.float32), r"shape \(3, {s1}, {s}\)"),
    (lambda s: np.zeros((s, s), np.float32), r"shape \({s}, {s}\)"),
    (lambda s: np.zeros((1, 3, s, s), np.uint8), r"got a uint8 array; a preprocessed batch is floating point"),
    (lambda s: np.array([["x"]]), r"got a <U1 array"),
    (lambda s: np.full((1, 3, s, s), np.nan, np.float32), r"NaN or infinite values"),
])
def test_embed_refuses_a_wrongly_shaped_or_typed_array(tiny_model_dir, make, problem):
    """A clear ValueError naming the model and the problem, not onnxruntime's INVALID_ARGUMENT."""
    emb = load_embedder(tiny_model_dir, threads=1)
    s = emb.spec.input_size
    with pytest.raises(EmbedderError, match=problem.format(s=s, s1=s + 1)) as info:
        emb.embed(make(s))
    assert isinstance(info.value, ValueError) and str(tiny_model_dir) in str(info.value)
    assert emb.embed(np.zeros((0, 3, s, s), np.float32)).shape == (0, FIXTURE_DIM)
    assert emb.embed(np.full((3, s, s), 0.5, np.float64)).shape == (1, FIXTURE_DIM)  # one image, any float


def test_manifest_disagreements_are_errors(tiny_model_dir, catalogue, tmp_path):
    _, items = catalogue
    wrong_dim = load_embedder(_copy_model(tiny_model_dir, tmp_path / "dim", embedding_dim=8))
    with pytest.raises(EmbedderError, match="outputs 16-dimensional embeddings but its manifest says 8"):
        wrong_dim.embed([items[0][0]])
    with pytest.raises(EmbedderError, match="SHA-256"):
        load_embedder(_copy_model(tiny_model_dir, tmp_path / "sha", sha256="0" * 64))
    with pytest.raises(ManifestError, match="no tflite/fp32 artefact"):
        load_embedder(tiny_model_dir, format="tflite")
    with pytest.raises(ManifestError):
        load_embedder(tmp_path / "nowhere")


def test_product_search_checks_embedding_space(tiny_model_dir, catalogue, tmp_path):
    _, items = catalogue
    emb = load_embedder(tiny_model_dir)
    index = GalleryIndex.from_images([p for p, _, _ in items], [pid for _, pid, _ in items], emb,
                                     [{"category": c} for _, _, c in items], storage="int8")
    assert index.embedding_space_id == emb.embedding_space_id
    path = index.save(tmp_path / "cat.dpindex")
    search = ProductSearch.open(tiny_model_dir, path)
    hits = search.search_image(items[2][0], k=3)
    assert hits[0].position == 2 and hits[0].score > 0.99
    assert all(h.metadata["category"] == "hat" for h in search.search_image(items[0][0], 2, {"category": "hat"}))
    other = build_tiny_model(tmp_path / "other", seed=1)
    with pytest.raises(EmbeddingSpaceMismatchError, match="rebuild the index"):
        ProductSearch.open(other, path)
    metrics = recall_at_k(index, emb.embed_paths([p for p, _, _ in items], progress=False),
                          [pid for _, pid, _ in items] + [], ks=(1, 5))
    assert metrics["recall@1"] == 1.0 and metrics["unmatched_queries"] == 0


NO_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
    import numpy as np
    import deepproduct.sdk
    from deepproduct.sdk import cli, embedders, gallery_index, search, catalogue, bundle, contact_sheet  # noqa: F401
    from deepproduct.sdk.embedders import load_embedder
    from deepproduct.sdk.gallery_index import GalleryIndex
    emb = load_embedder(sys.argv[1])
    vec = emb.embed([sys.argv[2]])
    index = GalleryIndex.from_embeddings(np.vstack([vec, -vec]), ["a", "b"], storage="int8",
                                         embedding_space_id=emb.embedding_space_id)
    assert index.search(vec[0], k=1)[0].product_id == "a"
    assert "torch" not in sys.modules
    print("ok without torch")
""")


def test_sdk_works_without_torch(tiny_model_dir, catalogue):
    _, items = catalogue
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(tiny_model_dir), str(items[0][0])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ok without torch" in proc.stdout


@pytest.mark.slow
def test_litert_embedder_matches_onnx(tiny_model_dir, catalogue, tmp_path):
    """Converts the tiny model with litert-torch (tens of seconds), then compares runtimes."""
    litert_torch = pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    import torch

    out = _copy_model(tiny_model_dir, tmp_path / "lite")
    model = make_tiny_module(FIXTURE_DIM, seed=0)  # the same weights as the ONNX fixture
    nhwc = litert_torch.to_channel_last_io(model, args=[0])
    edge = litert_torch.convert(nhwc, (torch.rand(1, 32, 32, 3),))
    edge.export(str(out / "model.tflite"))
    manifest = json.loads((out / "manifest.json").read_text())
    digest, size = sha256_file(out / "model.tflite"), (out / "model.tflite").stat().st_size
    manifest["artefacts"].append({"file": "model.tflite", "format": "tflite", "precision": "fp32",
                                  "layout": "NHWC", "input_name": "image", "output_name": "embedding",
                                  "sha256": digest, "size_bytes": size, "parity": []})
    manifest["files"].append({"path": "model.tflite", "sha256": digest, "size_bytes": size})
    (out / "manifest.json").write_text(json.dumps(manifest))
    paths = [p for p, _, _ in catalogue[1][:4]]
    lite = load_embedder(out, format="tflite").embed_paths(paths, progress=False)
    onnx = load_embedder(out).embed_paths(paths, progress=False)
    np.testing.assert_allclose(lite, onnx, atol=1e-5)
