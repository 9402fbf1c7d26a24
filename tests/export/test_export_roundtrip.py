"""dp-export end to end on a small model: every format through its real runtime, the two TFLite
clients, Core ML structure and MIL-evaluator numerics, the manifest, and dp-export verify.

One export (tiny_cnn, every format and precision) is shared by the whole module; it takes about a
minute on two cores. Needs the side virtualenvs (bash export/tflite/setup_client_envs.sh).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from deepproduct.export.cli import main
from deepproduct.export.tflite.side_envs import MEDIAPIPE, TFLITE_SUPPORT
from deepproduct.sdk.model_manifest import load_model_manifest
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image
from deepproduct.training.checkpoint import embedding_space_id, load_model, model_config_of, save_checkpoint
from deepproduct.training.models import build_embedding_net

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (TFLITE_SUPPORT.available() and MEDIAPIPE.available()),
                       reason="side virtualenvs missing: run bash export/tflite/setup_client_envs.sh"),
]

QUANTIZE = "none,fp32,fp16,int8,palette"


def _randomise_batch_norms(model: torch.nn.Module) -> None:
    """Fresh BN statistics are identity-like; real ones make folding and quantisation matter."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 32, "avg", pretrained=False).eval()
    _randomise_batch_norms(model)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model, model_config=model_config_of(model))


@pytest.fixture(scope="module")
def exported(checkpoint, tiny_manifest, tmp_path_factory) -> tuple[Path, str]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("export") / "tiny_export"
    result = CliRunner().invoke(main, [str(checkpoint), "--out", str(out), "--quantize", QUANTIZE,
                                       "--calib", str(tiny_manifest), "--calib-count", "8",
                                       "--parity-images", "16", "--report", str(out.parent / "report.md")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result.output


@pytest.fixture(scope="module")
def fresh_images(tiny_manifest) -> np.ndarray:
    """Images the parity set did not use (train split), preprocessed at the model's size."""
    paths = sorted((tiny_manifest.parent / "images").rglob("*.jpg"))[-6:]
    return np.concatenate([preprocess_image(p, PreprocessingSpec.for_input_size(64)) for p in paths])


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _reference(checkpoint: Path, images: np.ndarray) -> np.ndarray:
    model, _ = load_model(checkpoint)
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


def test_cli_prints_progress_and_summary(exported):
    out, output = exported
    assert "[1] load checkpoint" in output and "parity by real runtimes" in output
    assert "coreml/palette6" in output and "mediapipe @ input size" in output
    report = (out.parent / "report.md").read_text()
    marker, _, body = report.partition("\n")  # --report carries the output policy's marker line first
    assert marker.startswith("<!-- written by DeepProduct")
    assert body == (out / "export_report.md").read_text() and "| model_int8.tflite |" in report
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "temporary folder left behind"


def test_manifest_validates_hashes_match_and_sdk_reads_it(exported, checkpoint):
    from deepproduct.export.manifest import check_hashes, validate

    out, _ = exported
    raw = json.loads((out / "manifest.json").read_text())
    validate(raw)
    assert check_hashes(out, raw) == []
    m = load_model_manifest(out)
    assert m.embedding_dim == 32 and m.input_size == 64 and m.backbone == "tiny_cnn"
    model, _ = load_model(checkpoint)
    assert m.embedding_space_id == embedding_space_id(model)
    keys = {(a.format, a.precision) for a in m.artefacts}
    assert keys == {("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8"),
                    ("coreml", "fp16"), ("coreml", "fp32"), ("coreml", "int8"), ("coreml", "palette6")}
    assert {a.layout for a in m.artefacts if a.format == "tflite"} == {"NHWC"}
    assert raw["parity"]["passed"] and all(p["passed"] for a in raw["artefacts"] for p in a["parity"])
    assert raw["input"]["normalisation"]["applied"] == "in-graph"
    assert any("not been tested" in w for w in raw["warnings"])  # coremltools vs torch 2.14
    assert {"torch", "onnxruntime", "coremltools", "litert-torch", "tflite-support", "mediapipe"} <= set(raw["tools"])


def test_onnx_parity_dynamic_batch_and_metadata(exported, checkpoint, fresh_images):
    import onnx
    import onnxruntime as ort

    out, _ = exported
    ref = _reference(checkpoint, fresh_images)
    proto = onnx.load(str(out / "model_fp32.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["deepproduct.embedding_dim"] == "32" and props["deepproduct.colour_order"] == "RGB"
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    for precision, threshold in (("fp32", 0.9999), ("fp16", 0.9999), ("int8", 0.98)):
        session = ort.InferenceSession(str(out / f"model_{precision}.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["image"]
        got = session.run(["embedding"], {"image": fresh_images})[0]  # batch of 6: dynamic axis
        assert got.shape == (6, 32)
        assert _cos(got, ref).mean() >= threshold, precision


def test_tflite_parity_nhwc_names_and_no_input_transpose(exported, checkpoint, fresh_images):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fb

    out, _ = exported
    ref = _reference(checkpoint, fresh_images)
    for precision, threshold in (("fp32", 0.9999), ("int8", 0.98)):
        path = out / f"model_{precision}.tflite"
        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()
        inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
        assert inp["name"] == "image" and outp["name"] == "embedding"
        assert list(inp["shape"]) == [1, 64, 64, 3] and inp["dtype"] == np.float32
        got = []
        for image in fresh_images.transpose(0, 2, 3, 1):
            interp.set_tensor(inp["index"], image[None].copy())
            interp.invoke()
            got.append(interp.get_tensor(outp["index"])[0].copy())
        assert _cos(np.stack(got), ref).mean() >= threshold, precision
        model = fb.read_model(str(path))
        graph = model.subgraphs[0]
        consumers = [fb.opcode_to_name(model, op.opcodeIndex) for op in graph.operators
                     if graph.inputs[0] in list(op.inputs)]
        assert "TRANSPOSE" not in consumers, consumers
        assert any(m.name == b"TFLITE_METADATA" for m in model.metadata or [])


def test_tflite_clients_accept_the_file_and_agree_at_input_size(exported, tmp_path):
    """Task Library and MediaPipe ImageEmbedder vs our interpreter on the same S x S pixels."""
    from deepproduct.export.tflite.client_checks import check_clients

    out, _ = exported
    raw = json.loads((out / "manifest.json").read_text())
    recorded = next(a for a in raw["artefacts"] if a["file"] == "model_fp32.tflite")["clients"]
    for name in ("task_library", "mediapipe"):
        assert recorded[name]["input_size"]["mean"] >= 0.9999
        assert "drift_native" in recorded[name] and "drift_shorter_512px" in recorded[name]
    # And once more here, directly, on images the export never saw.
    photos = sorted(Path(out / "parity" / "images").glob("*"))[:4]
    spec = PreprocessingSpec.for_input_size(64)
    tensors = np.concatenate([preprocess_image(p, spec) for p in photos])
    result = check_clients(out / "model_fp32.tflite", tensors, photos, spec, tmp_path, drift=False)
    assert result["passed"], result
    assert result["task_library"]["input_size"]["min"] >= 0.9999
    assert result["mediapipe"]["input_size"]["min"] >= 0.9999


def test_coreml_structure_of_every_package(exported):
    import coremltools as ct

    from deepproduct.export.coreml.checks import check_package
    from deepproduct.export.verify import _info_from_manifest

    out, _ = exported
    raw = json.loads((out / "manifest.json").read_text())
    info = _info_from_manifest(raw)
    for precision in ("fp32", "fp16", "int8", "palette6"):
        path = out / f"model_{precision}.mlpackage"
        facts = check_package(path, info, precision)  # raises listing every failed check
        assert facts["input"] == {"width": 64, "height": 64, "colour_space": "RGB"}
        assert facts["output"] == {"shape": [1, 32], "dtype": "FLOAT32"}
        assert facts["spec_version"] == 7  # iOS16
        assert "batch_norm" not in facts["op_counts"]
        assert facts["image_bias"] == pytest.approx([-0.5, -0.5, -0.5])
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()  # reload from disk
        assert spec.description.metadata.author == "DeepProduct"
        assert spec.description.metadata.userDefined["deepproduct.precision"] == precision


def test_coreml_mil_evaluator_numerics_against_pytorch(exported, checkpoint, fresh_images):
    from deepproduct.export.coreml.mil_evaluator import MILProgram

    out, _ = exported
    ref = _reference(checkpoint, fresh_images)
    for precision, threshold in (("fp32", 0.99999), ("fp16", 0.9999), ("int8", 0.999), ("palette6", 0.99)):
        got = MILProgram(out / f"model_{precision}.mlpackage").embed_images(fresh_images)
        assert _cos(got, ref).mean() >= threshold, precision


def test_mil_evaluator_catches_a_missing_normalisation(checkpoint, fresh_images, tmp_path):
    """A package whose ImageType bias was forgotten must score visibly below the threshold."""
    import coremltools as ct

    from deepproduct.export.coreml.convert import fold_normalisation
    from deepproduct.export.coreml.mil_evaluator import MILProgram

    model, _ = load_model(checkpoint)
    folded = fold_normalisation(model, 64)
    program = torch.export.export(folded, (torch.rand(1, 3, 64, 64),)).run_decompositions({})
    wrong = ct.convert(program, inputs=[ct.ImageType(name="image", shape=(1, 3, 64, 64), scale=1 / 255,
                                                     color_layout=ct.colorlayout.RGB)],
                       outputs=[ct.TensorType(name="embedding", dtype=np.float32)], convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16)
    wrong.save(str(tmp_path / "wrong.mlpackage"))
    got = MILProgram(tmp_path / "wrong.mlpackage").embed_images(fresh_images)
    assert _cos(got, _reference(checkpoint, fresh_images)).mean() < 0.999


def test_verify_passes_then_catches_a_tampered_file(exported, tmp_path):
    out, _ = exported
    ok = CliRunner().invoke(main, ["verify", str(out), "--no-clients"])
    assert ok.exit_code == 0, ok.output
    assert "all checks passed" in ok.output
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with open(copy / "model_int8.onnx", "ab") as f:
        f.write(b"\0")
    bad = CliRunner().invoke(main, ["verify", str(copy), "--no-clients"])
    assert bad.exit_code == 1
    assert "sha256 mismatch for model_int8.onnx" in bad.output


def test_verify_on_other_images_uses_onnx_fp32_as_reference(exported, tiny_manifest):
    out, _ = exported
    r = CliRunner().invoke(main, ["verify", str(out), "--images", str(tiny_manifest), "--no-clients"])
    assert r.exit_code == 0, r.output
    assert "all checks passed" in r.output


def test_mobilenetv3_small_onnx_and_coreml(tiny_manifest, tmp_path):
    """Squeeze-excite, hard-swish and torchvision's layout through ONNX and the MIL evaluator."""
    torch.manual_seed(0)
    model = build_embedding_net("mobilenetv3_small", 64, "avg", pretrained=False).eval()
    _randomise_batch_norms(model)
    ckpt = save_checkpoint(tmp_path / "mnv3", model, model_config=model_config_of(model))
    out = tmp_path / "mnv3_export"
    result = CliRunner().invoke(main, [str(ckpt), "--out", str(out), "--formats", "onnx,coreml",
                                       "--quantize", "none", "--image-size", "96", "--calib", str(tiny_manifest),
                                       "--parity-images", "8", "--no-clients"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    raw = json.loads((out / "manifest.json").read_text())
    coreml = next(a for a in raw["artefacts"] if a["format"] == "coreml")
    assert coreml["parity"][0]["cosine_mean"] >= 0.9999 and coreml["structure"]["input"]["width"] == 96
    assert "sigmoid_hard" in coreml["structure"]["op_counts"]
