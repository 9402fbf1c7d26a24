"""dp-export's bad inputs: each a clear message, a non-zero exit and no half-written output folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from deepproduct.export.cli import main
from deepproduct.training import checkpoint as ckpt_mod
from deepproduct.training.models import (
    EmbeddingNet,
    build_embedding_net,
    create_backbone,
    register_architecture,
)
from deepproduct.training.models.registry import ARCHITECTURES


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 16, "avg", pretrained=False).eval()
    return ckpt_mod.save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", model,
                                    model_config=ckpt_mod.model_config_of(model))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    for i in range(4):
        Image.new("RGB", (90, 70), (40 * i, 200 - 30 * i, 90)).save(folder / f"im{i}.png")
    return folder


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} was written"
    assert not list(out.parent.glob(f".{out.name}.*")), "temporary folder left behind"


def test_missing_checkpoint(tmp_path, images):
    out = tmp_path / "out"
    r = _run([str(tmp_path / "nope.safetensors"), "--out", str(out), "--calib", str(images)])
    assert r.exit_code == 1 and "checkpoint not found" in r.output
    _assert_nothing_written(out)


def test_corrupt_checkpoint(tmp_path, images):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    out = tmp_path / "out"
    r = _run([str(bad), "--out", str(out), "--calib", str(images)])
    assert r.exit_code == 1 and "not a readable safetensors checkpoint" in r.output
    _assert_nothing_written(out)


@pytest.mark.parametrize("option, value, expected", [
    ("--formats", "onnx,pt", "unknown format 'pt'"),
    ("--quantize", "none,int4", "unknown quantisation 'int4'"),
])
def test_unknown_format_or_quantisation(tmp_path, tiny_checkpoint, images, option, value, expected):
    out = tmp_path / "out"
    r = _run([str(tiny_checkpoint), "--out", str(out), "--calib", str(images), option, value])
    assert r.exit_code == 2 and expected in r.output
    _assert_nothing_written(out)


@pytest.mark.slow  # the parity set (embedded benchmark) is built before the calibration folder is read: ~2 min under load
def test_calibration_folder_without_readable_images(tmp_path, tiny_checkpoint):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not an image")
    (junk / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    r = _run([str(tiny_checkpoint), "--out", str(out), "--calib", str(junk), "--formats", "onnx",
              "--quantize", "int8"])
    assert r.exit_code == 1 and "no readable images" in r.output and str(junk) in r.output
    _assert_nothing_written(out)


def test_existing_output_needs_overwrite(tmp_path, tiny_checkpoint, images):
    out = tmp_path / "out"
    out.mkdir()
    r = _run([str(tiny_checkpoint), "--out", str(out), "--calib", str(images)])
    assert r.exit_code == 3 and "--overwrite" in r.output  # 3: refused by the output policy
    assert out.is_dir() and not any(out.iterdir())


class _ErfinvNet(EmbeddingNet):
    """An embedding net with an op none of the three converters supports (aten.erfinv)."""

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return torch.erfinv(super().forward(x01) * 0.5)


class _InputWarpNet(EmbeddingNet):
    """A net whose first operation on the image is not the first conv (folding 1/std is wrong)."""

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return super().forward(x01 * x01)


def _build_erfinv(cfg: dict, pooling: str) -> EmbeddingNet:
    return _ErfinvNet(create_backbone(cfg["backbone"], pretrained=False), int(cfg["embedding_dim"]), pooling)


def _build_warp(cfg: dict, pooling: str) -> EmbeddingNet:
    return _InputWarpNet(create_backbone(cfg["backbone"], pretrained=False), int(cfg["embedding_dim"]), pooling)


@pytest.fixture
def test_architecture(request):
    """Register a throw-away architecture (rebuild only) for one test; removed afterwards."""

    def register(name: str, rebuild) -> None:
        def no_training(cfg):
            raise AssertionError(f"{name} is for export tests only")

        register_architecture(name, build=no_training, rebuild=rebuild)
        request.addfinalizer(lambda: ARCHITECTURES.unregister(name))

    return register


@pytest.mark.slow  # a Core ML conversion
def test_coreml_refuses_a_model_it_cannot_fold_the_normalisation_into(tmp_path, images, test_architecture):
    test_architecture("test_warp", _build_warp)
    model = _build_warp({"backbone": "tiny_cnn", "embedding_dim": 16}, "avg").eval()
    model.extra_config = {"architecture": "test_warp"}
    path = ckpt_mod.save_checkpoint(tmp_path / "warp", model, model_config=ckpt_mod.model_config_of(model))
    out = tmp_path / "out"
    r = _run([str(path), "--out", str(out), "--calib", str(images), "--formats", "coreml", "--quantize", "none"])
    assert r.exit_code == 1 and "first operation on the image is not that conv" in r.output
    _assert_nothing_written(out)


@pytest.mark.slow
@pytest.mark.parametrize("fmt, op", [("onnx", "erf_inv"), ("tflite", "aten.erfinv"), ("coreml", "erfinv")])
def test_unsupported_op_names_the_op_and_the_format(tmp_path, images, test_architecture, fmt, op):
    test_architecture("test_erfinv", _build_erfinv)
    model = _build_erfinv({"backbone": "tiny_cnn", "embedding_dim": 16}, "avg").eval()
    model.extra_config = {"architecture": "test_erfinv"}
    path = ckpt_mod.save_checkpoint(tmp_path / "erf", model, model_config=ckpt_mod.model_config_of(model))
    out = tmp_path / "out"
    r = _run([str(path), "--out", str(out), "--calib", str(images), "--formats", fmt, "--quantize", "none",
              "--no-clients"])
    assert r.exit_code == 1, r.output
    assert f"the {fmt} converter cannot handle the operator" in r.output and op in r.output
    _assert_nothing_written(out)
