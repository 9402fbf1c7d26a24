"""ExecuTorch export: a tiny model to .pte, checked through the ExecuTorch runtime itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from support.export import model_info_of

from deepproduct.export.errors import ExportError
from deepproduct.export.executorch.exporter import structure_problems
from deepproduct.export.manifest import minimal_manifest, write_manifest
from deepproduct.sdk.bundle import BundleError, write_bundle
from deepproduct.sdk.embedders import load_embedder
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image
from deepproduct.training.models import build_embedding_net

pytest.importorskip("executorch", reason="the executorch extra (make setup installs it)")
from deepproduct.export.executorch import lower as el  # noqa: E402


def _tiny(pooling: str = "avg", seed: int = 0):
    torch.manual_seed(seed)
    model = build_embedding_net("tiny_cnn", 16, pooling=pooling, pretrained=False).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model, model_info_of(model, version="0")


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


@pytest.fixture(scope="module")
def fp32_export(tmp_path_factory):
    """One tiny fp32 .pte in a model folder with its manifest (shared: each export costs seconds)."""
    model, info = _tiny()
    folder = tmp_path_factory.mktemp("pte")
    summary = el.export_xnnpack_fp32(model, info, folder / "model_fp32.pte")
    m = minimal_manifest([("model_fp32.pte", "executorch", "fp32")], embedding_dim=16, input_size=info.input_size,
                         embedding_space_id=info.embedding_space_id, mean=info.mean, std=info.std)
    write_manifest(folder, m)
    return model, info, folder, summary


@pytest.mark.slow
def test_fp32_pte_runs_in_the_executorch_runtime(fp32_export):
    model, info, folder, summary = fp32_export
    path = folder / "model_fp32.pte"
    assert summary.fully_delegated and summary.backends == {el.XNNPACK: 1}
    assert summary.delegated_op_counts["aten.convolution.default"] == 3
    facts = el.pte_facts(path)
    assert facts["delegates"] == [el.XNNPACK] and facts["non_delegated_kernels"] == []
    assert {"forward", el.METADATA_METHOD, "input_name", "output_name"} <= set(facts["methods"])
    meta = el.read_metadata(path)
    assert meta["deepproduct.embedding_space_id"] == info.embedding_space_id
    assert structure_problems(path, "executorch", info.embedding_space_id) == []
    assert "embedding space" in structure_problems(path, "executorch", "f" * 64)[0]
    assert "CoreMLBackend delegate" in structure_problems(path, "executorch-coreml", info.embedding_space_id)[0]
    images = _images(6, info.input_size)
    got = el.run_pte(path, images, threads=1)
    with torch.no_grad():
        want = model(torch.from_numpy(images)).numpy()
    assert got.shape == (6, 16)
    assert _cosine(got, want).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_sdk_embeds_a_photo_through_the_pte(fp32_export, tmp_path):
    model, info, folder, _ = fp32_export
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8).repeat(2, 0).repeat(2, 1)).save(photo)
    embedder = load_embedder(folder, "executorch", "fp32", threads=1)
    got = embedder.embed([photo])
    x = preprocess_image(photo, PreprocessingSpec.for_input_size(info.input_size))
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _cosine(got, want)[0] >= 0.9999


@pytest.mark.slow
def test_programs_at_different_thread_counts_survive_pool_resets(fp32_export):
    """A pool reset under a loaded XNNPACK program aborted the process; now it is reloaded."""
    from deepproduct.sdk.executorch_runtime import PteMethod

    _, info, folder, _ = fp32_export
    x = _images(1, info.input_size, seed=7)
    one, two = PteMethod(folder / "model_fp32.pte", 1), PteMethod(folder / "model_fp32.pte", 2)
    first = one(x)
    np.testing.assert_allclose(two(x), first, atol=1e-6)
    np.testing.assert_allclose(one(x), first, atol=1e-6)  # one's program was loaded under the old pool


@pytest.mark.slow
def test_android_bundle_can_ship_the_pte(fp32_export, tmp_path):
    _, info, folder, _ = fp32_export
    rng = np.random.default_rng(0)
    index = GalleryIndex.from_embeddings(rng.normal(size=(3, 16)).astype(np.float32), ["a", "b", "c"],
                                         [{}] * 3, embedding_space_id=info.embedding_space_id).save(tmp_path / "g.dpindex")
    out = write_bundle(folder, index, tmp_path / "android", "android", runtime="executorch")
    desc = json.loads((out / "bundle.json").read_text())
    assert desc["models"] == [{"file": "model_fp32.pte", "format": "executorch", "precision": "fp32"}]
    assert (out / "model_fp32.pte").read_bytes() == (folder / "model_fp32.pte").read_bytes()
    with pytest.raises(BundleError, match="needs a tflite model"):  # LiteRT stays the default
        write_bundle(folder, index, tmp_path / "android2", "android")
    with pytest.raises(BundleError, match="runs tflite or executorch models, not 'coreml'"):
        write_bundle(folder, index, tmp_path / "android3", "android", runtime="coreml")


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


@pytest.mark.slow
def test_bench_rows_for_one_and_two_threads(fp32_export):
    from deepproduct.benchmarks.model_bench import bench_models

    _, _, folder, _ = fp32_export
    records = bench_models(folder, threads=[1, 2], runs=5, warmup=1, throughput_batch=4, throughput_runs=1,
                           progress=False)
    latency = {(r["artefact"], r["threads"], r["batch"]) for r in records if r["kind"] == "latency"}
    assert latency == {("executorch/fp32", 1, 1), ("executorch/fp32", 2, 1)}
    row = next(r for r in records if r["kind"] == "latency")
    assert row["runtime"] == "executorch-xnnpack" and row["median_ms"] > 0
    skipped = [r for r in records if r["kind"] == "skipped"]
    assert skipped and all("batch 1" in r["reason"] for r in skipped)  # fixed batch, said so


@pytest.mark.slow
def test_dp_export_writes_pte_with_delegation_runtime_parity_and_card(tiny_manifest, tmp_path):
    """dp-export --formats executorch,executorch-coreml: manifest, parity, model card, verify."""
    from click.testing import CliRunner

    from deepproduct.export.cli import main
    from deepproduct.training.checkpoint import model_config_of, save_checkpoint

    model, _ = _tiny()
    ckpt = save_checkpoint(tmp_path / "tiny", model, model_config=model_config_of(model))
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", str(ckpt), "--out", str(out), "--formats",
                                       "executorch,executorch-coreml", "--quantize", "none,int8",
                                       "--calib", str(tiny_manifest), "--calib-count", "16", "--no-clients"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {a["file"]: a for a in manifest["artefacts"]}
    assert set(entries) == {"model_fp32.pte", "model_int8.pte", "model_fp16.coreml.pte"}
    for name in ("model_fp32.pte", "model_int8.pte"):
        a = entries[name]
        assert a["delegation"]["fully_delegated"] and a["delegation"]["backends"] == {"XnnpackBackend": 1}
        assert [r["runtime"] for r in a["parity"]] == ["executorch runtime (XNNPACK)"]
        assert a["parity"][0]["passed"] and a["parity"][0]["images"] == manifest["parity"]["images"]
    assert entries["model_fp32.pte"]["parity"][0]["cosine_min"] >= 0.9999
    assert entries["model_int8.pte"]["parity"][0]["recall_gate"] is not None  # the int8 Recall@1 gate ran
    coreml = entries["model_fp16.coreml.pte"]
    assert coreml["delegation"]["backends"] == {"CoreMLBackend": 1} and coreml["parity"] == []
    assert coreml["runtime_check"].startswith("structural checks only")
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0") and "model_int8.pte via executorch runtime (XNNPACK)" in card
    verify = CliRunner().invoke(main, ["verify", str(out), "--no-clients"])
    assert verify.exit_code == 0, verify.output
    (out / "README.md").write_text(card.replace("Intended use", "Intended uses"))
    verify = CliRunner().invoke(main, ["verify", str(out), "--no-clients"])
    assert verify.exit_code != 0 and "README.md" in verify.output
