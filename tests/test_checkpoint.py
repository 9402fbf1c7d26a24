"""Checkpoints are safetensors + JSON, self-describing, atomic, with clear errors."""

from pathlib import Path

import pytest
import torch

from deepproduct.training.checkpoint import (
    CheckpointError,
    embedding_space_id,
    load_model,
    load_trainer_state,
    model_config_of,
    save_checkpoint,
)
from deepproduct.training.models import build_embedding_net


def _model(seed=0):
    torch.manual_seed(seed)
    return build_embedding_net("tiny_cnn", embedding_dim=16, pretrained=False)


def test_round_trip_weights_config_and_optimizer(tmp_path: Path):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, 64, 64)).sum().backward()
    opt.step()
    weights = save_checkpoint(tmp_path / "ck", model, model_config=model_config_of(model),
                              trainer_state={"epoch": 3, "step": 7}, optimizer=opt)
    assert weights.suffix == ".safetensors"
    assert not list(tmp_path.glob("*.tmp"))
    loaded, cfg = load_model(weights)
    assert cfg["backbone"] == "tiny_cnn" and cfg["embedding_dim"] == 16
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(loaded(x), model(x))
    assert embedding_space_id(loaded) == embedding_space_id(model)
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1e-3)
    state = load_trainer_state(weights, opt2)
    assert state["epoch"] == 3
    torch.testing.assert_close(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_space_id_changes_with_weights():
    assert embedding_space_id(_model(0)) != embedding_space_id(_model(1))


def test_missing_and_corrupt_checkpoints(tmp_path: Path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_model(bad)


def test_interrupted_save_keeps_previous(tmp_path: Path, monkeypatch):
    model = _model()
    path = save_checkpoint(tmp_path / "ck", model, model_config=model_config_of(model))
    before = path.read_bytes()

    import deepproduct.training.checkpoint as ck

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", _model(1), model_config=model_config_of(model))
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
