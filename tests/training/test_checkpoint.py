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


def _with_optimizer(tmp_path: Path, **config) -> tuple[Path, torch.optim.Optimizer]:
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, model.input_size, model.input_size)).sum().backward()
    opt.step()
    weights = save_checkpoint(tmp_path / "ck", model, model_config={**model_config_of(model), **config},
                              trainer_state={"epoch": 1, "step": 4}, optimizer=opt)
    return weights, opt


@pytest.mark.parametrize("version", [99, 0, "1", None])
def test_unknown_format_version_is_refused(tmp_path: Path, version):
    """A checkpoint of a layout we do not know is refused by the reader, so dp-export fails clearly."""
    from click.testing import CliRunner

    from deepproduct.export.cli import main as dp_export

    weights, _ = _with_optimizer(tmp_path, checkpoint_format_version=version)
    with pytest.raises(CheckpointError, match=rf"ck\.safetensors: checkpoint_format_version {version!r} is not "
                                              r"supported \(this version reads 1\)"):
        load_model(weights)
    out = tmp_path / "export"
    result = CliRunner().invoke(dp_export, [str(weights), "--out", str(out), "--formats", "onnx"])
    assert result.exit_code == 1 and "checkpoint_format_version" in result.output, result.output
    assert not out.exists() and not list(tmp_path.glob(".export.*"))


def test_resume_without_optimiser_state_names_the_missing_file(tmp_path: Path):
    weights, opt = _with_optimizer(tmp_path)
    (tmp_path / "ck.optim.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"ck\.optim\.safetensors: missing; --resume needs the optimiser state"):
        load_trainer_state(weights, opt)
    assert load_trainer_state(weights)["epoch"] == 1  # the weights and state alone are still readable


@pytest.mark.parametrize("text, problem", [
    ('{"epoch": 1, "step": ', "not valid JSON"),
    ("[1, 2]", "no integer 'epoch'"),
    ('{"epoch": 1, "step": 2}', "no optimizer_param_groups list"),
    (b"\xff\xfe{}", "not valid JSON"),
])
def test_corrupt_trainer_json_names_the_file(tmp_path: Path, text, problem):
    weights, opt = _with_optimizer(tmp_path)
    json_path = tmp_path / "ck.json"
    json_path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CheckpointError, match=rf"{json_path}: corrupt trainer state.*{problem}"):
        load_trainer_state(weights, opt)


def test_corrupt_optimiser_file_names_it(tmp_path: Path):
    weights, opt = _with_optimizer(tmp_path)
    (tmp_path / "ck.optim.safetensors").write_bytes(b"\x00garbage" * 8)
    with pytest.raises(CheckpointError, match=r"ck\.optim\.safetensors: not a readable safetensors file"):
        load_trainer_state(weights, opt)


@pytest.mark.parametrize("key, value", [("input_size", 10**6), ("embedding_dim", 0), ("trained_input_size", 10**6),
                                        ("trained_input_size", "160"), ("trained_input_size", True)])
def test_out_of_range_sizes_are_refused_before_anything_is_built(tmp_path: Path, key, value):
    """A few-KB checkpoint must not make the reader build a huge model (or refit a head at a huge
    size); every size in model_config is range-checked, the recorded training size included."""
    weights, _ = _with_optimizer(tmp_path, **{key: value})
    with pytest.raises(CheckpointError, match=rf"model_config {key} is {value!r}; expected an integer in"):
        load_model(weights)
