"""deepproduct.sdk.bundle: the demo asset bundles and the checks made before writing one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepproduct.export.manifest import minimal_manifest, write_manifest
from deepproduct.sdk.bundle import BundleError, BundleRefused, main, write_bundle
from deepproduct.sdk.cli import main as dp_search
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import EmbeddingSpaceMismatchError
from deepproduct.sdk.preprocessing import PreprocessingSpec

SPACE = "1" * 64  # an embedding-space id is a sha256 (the manifest schema)


def _model_dir(tmp: Path, space: str = SPACE, dim: int = 8) -> Path:
    d = tmp / "model"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"not really onnx")
    (d / "model.tflite").write_bytes(b"not really tflite")
    write_manifest(d, minimal_manifest([("model.onnx", "onnx", "fp32"), ("model.tflite", "tflite", "fp32")],
                                       name="t", version="1", embedding_dim=dim,
                                       input_size=PreprocessingSpec().input_size, embedding_space_id=space))
    return d


def _index(tmp: Path, space: str = SPACE, dim: int = 8) -> Path:
    rng = np.random.default_rng(0)
    index = GalleryIndex.from_embeddings(rng.normal(size=(4, dim)).astype(np.float32), ["a", "b", "c", "d"],
                                         [{"category": "x"}] * 4, embedding_space_id=space)
    return index.save(tmp / "g.dpindex")


def test_web_bundle_holds_model_manifest_index_and_samples(tmp_path):
    photo = tmp_path / "q.png"
    Image.new("RGB", (4, 4)).save(photo)  # samples must be real images (bundle.check_sample)
    out = write_bundle(_model_dir(tmp_path), _index(tmp_path), tmp_path / "web", "web", samples=[(photo, "b")])
    desc = json.loads((out / "bundle.json").read_text())
    assert desc["models"] == [{"file": "model.onnx", "format": "onnx", "precision": "fp32"}]
    assert desc["index"] == "catalogue.dpindex" and desc["manifest"] == "manifest.json"
    assert desc["samples"] == [{"file": "samples/q.png", "product_id": "b"}] and desc["embedding_space_id"] == SPACE
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json", "catalogue.dpindex", "manifest.json",
                                                       "manifest.schema.json", "model.onnx", "samples"]
    assert GalleryIndex.load(out / "catalogue.dpindex", expected_space_id=SPACE).product_ids == ["a", "b", "c", "d"]


def test_rewriting_replaces_the_old_bundle_whole(tmp_path):
    model, index = _model_dir(tmp_path), _index(tmp_path)
    out = tmp_path / "android"
    write_bundle(model, index, out, "android")
    (out / "stale.txt").write_text("old")  # a file the bundle does not list: the user's, never deleted
    with pytest.raises(BundleRefused, match="does not list"):
        write_bundle(model, index, out, "android")
    assert (out / "stale.txt").read_text() == "old"
    refused = CliRunner().invoke(dp_search, ["bundle", "--model", str(model), "--index", str(index),
                                             "--target", "android", "--out", str(out)])
    assert refused.exit_code == 3 and "does not list" in refused.output  # a refusal, as everywhere
    (out / "stale.txt").unlink()
    write_bundle(model, index, out, "android")
    assert (out / "model.tflite").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_refuses_an_index_from_another_model(tmp_path):
    with pytest.raises(EmbeddingSpaceMismatchError, match="built in embedding space 'other'"):
        write_bundle(_model_dir(tmp_path), _index(tmp_path, space="other"), tmp_path / "web", "web")
    assert not (tmp_path / "web").exists()


def test_refuses_a_dimension_mismatch_a_changed_model_and_a_missing_artefact(tmp_path):
    model = _model_dir(tmp_path, dim=16)
    with pytest.raises(BundleError, match="8-dimensional index but the model"):
        write_bundle(model, _index(tmp_path), tmp_path / "web", "web")
    (tmp_path / "model" / "manifest.json").unlink()
    model = tmp_path / "m2"
    model.mkdir()
    _model_dir(model)
    (model / "model" / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="SHA-256 differs"):
        write_bundle(model / "model", _index(tmp_path), tmp_path / "web", "web")
    with pytest.raises(BundleError, match="ios bundle needs a coreml model"):
        write_bundle(model / "model", _index(tmp_path), tmp_path / "ios", "ios")


def test_cli_all_skips_platforms_without_a_model(tmp_path, capsys):
    code = main(["--model", str(_model_dir(tmp_path)), "--index", str(_index(tmp_path)), "--repo", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ios: skipped" in printed
    assert (tmp_path / "web_demo/bundle/model.onnx").exists()
    assert (tmp_path / "android_demo/app/src/main/assets/bundle/model.tflite").exists()


def test_one_artefact_file_can_be_named_directly(tmp_path):
    model = _model_dir(tmp_path)
    out = write_bundle(model / "model.tflite", _index(tmp_path), tmp_path / "a", "android")
    assert json.loads((out / "bundle.json").read_text())["models"][0]["file"] == "model.tflite"
    with pytest.raises(BundleError, match="is in onnx format, but the android demo runs tflite"):
        write_bundle(model / "model.onnx", _index(tmp_path), tmp_path / "b", "android")
