"""dp-export's small parts, without converters: option parsing, error translation, Recall@1,
calibration sources, hashing, the manifest schema, the crop geometry the clients are given."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from PIL import Image
from support import REPO_ROOT

from deepproduct.export import calibration, manifest, parity, variants
from deepproduct.export.converter_errors import op_from_message, translate
from deepproduct.export.errors import CalibrationError, UnsupportedOpError, UsageError
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image


def test_parse_list_rejects_unknown_tokens_naming_them():
    assert variants.parse_list("onnx, TFLite,onnx", variants.FORMATS, "format") == ["onnx", "tflite"]
    with pytest.raises(UsageError, match="'pt'.*choose from onnx, tflite, coreml"):
        variants.parse_list("onnx,pt", variants.FORMATS, "format")
    with pytest.raises(UsageError, match="'int4'"):
        variants.parse_list("none,int4", variants.QUANTIZATIONS, "quantisation")


def test_plan_variants_maps_tokens_per_format_and_reports_skips():
    planned, skipped = variants.plan_variants(["onnx", "tflite", "coreml"], ["none", "int8", "palette"])
    keys = [v.key for v in planned]
    assert keys == ["onnx/fp32", "onnx/int8", "tflite/fp32", "tflite/int8", "coreml/fp16", "coreml/int8",
                    "coreml/palette6"]
    assert any("tflite has no 'palette'" in s for s in skipped)
    assert {v.layout for v in planned if v.format == "tflite"} == {"NHWC"}
    with pytest.raises(UsageError, match="no artefact"):
        variants.plan_variants(["tflite"], ["palette"])


@pytest.mark.parametrize("message, op", [
    ("<class 'DispatchError'>: No ONNX function found for <OpOverload(op='aten.erfinv', overload='default')>",
     "aten.erfinv"),
    ("Lowering not found: aten.erfinv.default\n\nWhile executing %erfinv", "aten.erfinv"),
    ("Unsupported fx node erfinv, kind erfinv", "erfinv"),
    ("PyTorch convert function for op 'bessel_j0' not implemented.", "bessel_j0"),
])
def test_converter_messages_name_the_op(message, op):
    assert op_from_message(message) == op
    err = translate(RuntimeError(message), "tflite", "conversion")
    assert isinstance(err, UnsupportedOpError) and err.op == op and "tflite" in str(err)


def test_recall_at_1_is_consumer_to_shop_top1():
    e = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8], [0.1, 0.9]], dtype=np.float32)
    pids = ["a", "b", "a", "b", "a"]
    domains = ["shop", "shop", "user", "user", "user"]
    assert parity.recall_at_1(e, pids, domains) == pytest.approx(2 / 3)
    assert parity.recall_at_1(e, None, None) is None
    assert parity.cosines(e, e) == pytest.approx(np.ones(5))


def test_calibration_folder_without_readable_images_is_a_clear_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "b.png").write_bytes(b"")
    found = calibration.resolve_image_source(tmp_path, tmp_path)
    with pytest.raises(CalibrationError, match="no readable images.*2 file"):
        calibration.load_tensors(found, PreprocessingSpec.for_input_size(64), 4)
    with pytest.raises(CalibrationError, match="not found"):
        calibration.resolve_image_source(tmp_path / "missing", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no images"):
        calibration.resolve_image_source(empty, tmp_path)


def test_calibration_skips_unreadable_and_keeps_readable(tmp_path):
    Image.new("RGB", (80, 60), (200, 10, 10)).save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    found = calibration.resolve_image_source(tmp_path, tmp_path)
    chosen, tensors = calibration.load_tensors(found, PreprocessingSpec.for_input_size(64), 8)
    assert tensors.shape == (1, 3, 64, 64) and len(chosen.skipped) == 1


def test_manifest_source_keeps_labels_and_whole_products(tiny_manifest):
    images = calibration.resolve_image_source(tiny_manifest, tiny_manifest.parent)
    assert images.has_labels and set(images.domains) <= {"shop", "user"}
    idx = calibration.whole_product_indices(images, 10, seed=1)
    chosen = {images.product_ids[i] for i in idx}
    for pid in chosen:  # every image of a chosen product is in
        assert sum(p == pid for p in images.product_ids) == sum(images.product_ids[i] == pid for i in idx)


def test_directory_hash_is_sha256_of_sorted_listing(tmp_path):
    d = tmp_path / "pkg.mlpackage"
    (d / "sub").mkdir(parents=True)
    (d / "b.bin").write_bytes(b"bb")
    (d / "sub" / "a.bin").write_bytes(b"a")
    import hashlib

    listing = (f"{hashlib.sha256(b'bb').hexdigest()}  b.bin\n"
               f"{hashlib.sha256(b'a').hexdigest()}  sub/a.bin\n")
    assert manifest.sha256_path(d) == hashlib.sha256(listing.encode()).hexdigest()


def _minimal_manifest() -> dict:
    return manifest.minimal_manifest([("model_fp32.onnx", "onnx", "fp32")], embedding_dim=32, input_size=64,
                                     embedding_space_id="0" * 64, mean=(0.5,) * 3, std=(0.5,) * 3)


def test_schema_accepts_a_minimal_manifest_and_rejects_broken_ones():
    import jsonschema

    good = _minimal_manifest()
    manifest.validate(good)
    for breaker in (lambda m: m.pop("embedding_space_id"),
                    lambda m: m["artefacts"][0].update(layout="NHWC"),  # onnx must be NCHW
                    lambda m: m["artefacts"][0].update(sha256="xyz"),
                    lambda m: m.update(manifest_version=2),
                    lambda m: m["model"].pop("embedding_dim")):
        bad = copy.deepcopy(good)
        breaker(bad)
        with pytest.raises(jsonschema.ValidationError):
            manifest.validate(bad)


def test_schema_file_is_packaged_json():
    assert json.loads(manifest.SCHEMA_PATH.read_text())["$schema"].endswith("2020-12/schema")


def test_centre_crop_box_matches_the_preprocessing_crop(tmp_path):
    """The ROI handed to the clients is the region our own preprocessing keeps."""
    yy, xx = np.mgrid[0:300, 0:200].astype(np.float64)
    smooth = np.stack([np.sin(yy / 9.0), np.cos(xx / 7.0), np.sin((xx + yy) / 11.0)], axis=-1)
    pixels = ((smooth * 0.5 + 0.5) * 255).astype(np.uint8)  # smooth, so only misplacement shows
    path = tmp_path / "p.png"
    Image.fromarray(pixels).save(path)
    spec = PreprocessingSpec.for_input_size(64)
    left, top, w, h = parity.centre_crop_box(300, 200, spec)
    crop = Image.fromarray(pixels).crop((round(left), round(top), round(left + w), round(top + h)))
    ours = preprocess_image(path, spec, "HWC")
    theirs = np.asarray(crop.resize((64, 64), Image.Resampling.BOX), dtype=np.float32) / 255
    assert np.abs(ours - theirs).mean() < 0.02
    shifted = np.asarray(Image.fromarray(pixels).crop((round(left) + 6, round(top), round(left + w) + 6,
                                                       round(top + h))).resize((64, 64), Image.Resampling.BOX),
                         dtype=np.float32) / 255
    assert np.abs(ours - shifted).mean() > 2 * np.abs(ours - theirs).mean()
    boxes, rects = parity.rois_for([path], spec)
    assert boxes[0][2] == pytest.approx(w, abs=1) and 0 <= rects[0][0] < rects[0][2] <= 1


def test_side_env_missing_names_the_setup_command(monkeypatch, tmp_path):
    from deepproduct.export.errors import ClientEnvError
    from deepproduct.export.tflite.side_envs import MEDIAPIPE

    monkeypatch.setenv("DP_MEDIAPIPE_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ClientEnvError, match="bash export/tflite/setup_client_envs.sh"):
        MEDIAPIPE.require()


def test_clients_are_plain_scripts_not_a_package():
    clients = REPO_ROOT / "export" / "tflite" / "clients"
    assert not (clients / "__init__.py").exists()
    assert {p.name for p in clients.glob("*.py")} >= {"taskslib_embed.py", "mediapipe_embed.py",
                                                      "write_tflite_metadata.py"}

