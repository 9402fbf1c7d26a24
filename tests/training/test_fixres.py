"""FixRes: train at ``data.image_size``, fit the PCA head, evaluate and ship at ``data.ship_size``;
and the same after the fact with ``dp-train --eval-only --checkpoint C --refit-head``.

What must hold: the checkpoint records both sizes (the export manifest reads them), the head is
fitted at the ship size (not the training size), a refit at the training size reproduces the
trained run's head and figures exactly, and a refit writes only into its own run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from support.training import tiny_overrides

from deepproduct.training.checkpoint import load_model, read_model_config
from deepproduct.training.config import ConfigError, load_config
from deepproduct.training.train_cli import main as dp_train
from deepproduct.training.trainer import Trainer

PCA = {"head.projection": "pca", "head.projection_dim": 8}


def _train(manifest: Path, out: Path, name: str, **extra) -> Path:
    trainer = Trainer(load_config(None, tiny_overrides(manifest, out, name=name, **PCA, **extra)), progress=False)
    trainer.train()
    return out / name / "checkpoints" / "last.safetensors"


def test_ship_size_fits_the_head_and_records_both_sizes(tiny_manifest, tmp_path):
    ckpt = _train(tiny_manifest, tmp_path, "fixres", **{"data.ship_size": 96})
    cfg = read_model_config(ckpt)
    assert cfg["input_size"] == 96 and cfg["trained_input_size"] == 64
    summary = json.loads((tmp_path / "fixres" / "summary.json").read_text())
    assert summary["head"]["projection"]["image_size"] == 96

    plain = read_model_config(_train(tiny_manifest, tmp_path, "plain"))
    assert plain["input_size"] == 64 and "trained_input_size" not in plain


def test_ship_size_is_bounded():
    with pytest.raises(ConfigError, match="data.ship_size"):
        load_config(None, ["data.ship_size=10"])


def test_refit_at_the_training_size_reproduces_the_run(tiny_manifest, tmp_path):
    ckpt = _train(tiny_manifest, tmp_path, "run")
    args = [*tiny_overrides(tiny_manifest, tmp_path, name="refit", **PCA), "--eval-only", "--refit-head",
            "--checkpoint", str(ckpt), "--quiet"]
    result = CliRunner().invoke(dp_train, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "refit" / "eval.json").read_text())
    trained = json.loads((tmp_path / "run" / "summary.json").read_text())["final"]
    assert record["recall@1"] == trained["recall@1"]
    a, _ = load_model(ckpt)
    b, _ = load_model(record["refit_checkpoint"])
    torch.testing.assert_close(b.embed.weight, a.embed.weight, rtol=1e-4, atol=1e-5)


def test_refit_at_another_size_changes_the_head_and_records_the_trained_size(tiny_manifest, tmp_path):
    ckpt = _train(tiny_manifest, tmp_path, "run")
    args = [*tiny_overrides(tiny_manifest, tmp_path, name="refit96", **PCA, **{"data.image_size": 96}),
            "--eval-only", "--refit-head", "--checkpoint", str(ckpt), "--quiet"]
    assert CliRunner().invoke(dp_train, args).exit_code == 0
    refit = tmp_path / "refit96" / "checkpoints" / "last.safetensors"
    cfg = read_model_config(refit)
    assert cfg["input_size"] == 96 and cfg["trained_input_size"] == 64
    a, _ = load_model(ckpt)
    b, _ = load_model(refit)
    assert not torch.allclose(a.embed.weight, b.embed.weight, atol=1e-4)
    body = {k: v for k, v in a.state_dict().items() if not k.startswith("embed.")}
    for k, v in body.items():  # the backbone is untouched
        torch.testing.assert_close(b.state_dict()[k], v)


def test_refit_never_writes_over_an_existing_run(tiny_manifest, tmp_path):
    ckpt = _train(tiny_manifest, tmp_path, "run")
    before = ckpt.read_bytes()
    args = [*tiny_overrides(tiny_manifest, tmp_path, name="run", **PCA), "--eval-only", "--refit-head",
            "--checkpoint", str(ckpt), "--quiet"]
    result = CliRunner().invoke(dp_train, args)
    assert result.exit_code != 0 and ckpt.read_bytes() == before
    lone = CliRunner().invoke(dp_train, [*tiny_overrides(tiny_manifest, tmp_path, name="x"), "--refit-head"])
    assert lone.exit_code == 2 and "--refit-head goes with --eval-only --checkpoint" in lone.output
