"""Calibration images: the training split by default, never a parity image, clear errors on bad folders."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image

from deepproduct.export import calibration
from deepproduct.export.cli import main
from deepproduct.export.errors import CalibrationError
from deepproduct.sdk.preprocessing import PreprocessingSpec

SPEC = PreprocessingSpec.for_input_size(64)


def test_manifest_calibration_is_the_train_split_and_parity_the_test_split(tiny_manifest, tmp_path):
    parity = calibration.resolve_image_source(tiny_manifest, tmp_path, split="test")
    calib = calibration.calibration_source(tiny_manifest, tmp_path, parity)
    assert calib.source.endswith("(train split)") and parity.source.endswith("(test split)")
    assert not {p.resolve() for p in calib.paths} & {p.resolve() for p in parity.paths}
    assert not set(calib.product_ids) & set(parity.product_ids)


def test_a_folder_used_for_both_never_calibrates_on_a_parity_image(tmp_path):
    for i in range(10):
        Image.new("RGB", (80, 60), (20 * i, 100, 200 - 15 * i)).save(tmp_path / f"im{i}.png")
    found = calibration.resolve_image_source(tmp_path, tmp_path)
    parity, _ = calibration.load_tensors(found, SPEC, 4, seed=1)
    calib = calibration.calibration_source(tmp_path, tmp_path, parity)
    assert len(calib) == 6 and calib.excluded == 4
    assert not set(calib.paths) & set(parity.paths)
    chosen, tensors = calibration.load_tensors(calib, SPEC, 6, require=True)
    assert tensors.shape == (6, 3, 64, 64) and chosen.excluded == 4
    record = calibration.calibration_record(chosen, 6, 0)
    assert record == {"source": str(tmp_path), "images": 6, "requested": 6, "seed": 0, "unreadable_skipped": 0,
                      "parity_images_excluded": 4}


def test_fewer_readable_images_than_calib_count_is_an_error_naming_the_folder(tmp_path):
    for i in range(3):
        Image.new("RGB", (80, 60), (60 * i, 10, 10)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"junk")
    found = calibration.resolve_image_source(tmp_path, tmp_path)
    with pytest.raises(CalibrationError) as err:
        calibration.load_tensors(found, SPEC, 8, require=True)
    message = str(err.value)
    assert str(tmp_path) in message and "only 3 readable" in message and "--calib-count 8" in message
    assert "1 unreadable" in message and "\n" not in message


def test_cli_calibration_folder_errors_are_one_line_naming_the_folder(tmp_path, tiny_manifest):
    import torch

    from deepproduct.training import checkpoint as ckpt_mod
    from deepproduct.training.models import build_embedding_net

    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 16, "avg", pretrained=False).eval()
    ck = ckpt_mod.save_checkpoint(tmp_path / "tiny", model, model_config=ckpt_mod.model_config_of(model))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not a jpeg")
    few = tmp_path / "few"
    few.mkdir()
    for i in range(2):
        Image.new("RGB", (80, 60), (90 * i, 10, 10)).save(few / f"ok{i}.png")
    for folder, expected in ((junk, "no readable images in"), (few, "fewer than --calib-count 4")):
        r = CliRunner().invoke(main, [str(ck), "--out", str(tmp_path / "out"), "--calib", str(folder),
                                      "--parity", str(tiny_manifest), "--formats", "onnx", "--quantize", "int8",
                                      "--calib-count", "4", "--no-clients"])
        assert r.exit_code == 1, r.output
        line = [x for x in r.output.splitlines() if x.startswith("dp-export: error:")]
        assert len(line) == 1 and expected in line[0] and str(folder) in line[0]
        assert not (tmp_path / "out").exists()
