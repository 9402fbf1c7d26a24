"""WiSE-FT: alpha 0 and 1 are the two endpoints bit for bit, 0.5 the midpoint; the CLI writes a
checkpoint that loads like any other."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from deepproduct.training.checkpoint import load_model, model_config_of, save_checkpoint
from deepproduct.training.models import build_embedding_net
from deepproduct.training.models.backbones import TinyConvNet
from deepproduct.training.wise_ft import WiseFT, interpolate_state
from deepproduct.training.wise_ft import main as wise_cli


def test_interpolate_state_hand_values():
    pre = {"features.w": torch.tensor([0.1, 2.0]), "embed.weight": torch.tensor([5.0]),
           "features.bn.num_batches_tracked": torch.tensor(3)}
    ft = {"features.w": torch.tensor([0.3, -2.0]), "embed.weight": torch.tensor([7.0]),
          "features.bn.num_batches_tracked": torch.tensor(9)}
    mid = interpolate_state(pre, ft, 0.25)
    torch.testing.assert_close(mid["features.w"], torch.tensor([0.15, 1.0]))  # 0.75 * pre + 0.25 * ft
    assert float(mid["embed.weight"]) == 7.0  # the head has no pretrained counterpart: fine-tuned
    assert int(mid["features.bn.num_batches_tracked"]) == 9
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        interpolate_state(pre, ft, 1.5)


@pytest.fixture()
def endpoints(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "tiny_pretrained.safetensors"
    save_file(TinyConvNet().state_dict(), str(weights))
    model = build_embedding_net("tiny_cnn", 8, pretrained=str(weights))
    with torch.no_grad():  # "fine-tuning": move every backbone weight
        for name, p in model.named_parameters():
            if name.startswith("features."):
                p.add_(0.05 * torch.randn_like(p))
    model.input_size = 64
    ckpt = save_checkpoint(tmp_path / "ft", model, model_config=model_config_of(model))
    pretrained = build_embedding_net("tiny_cnn", 8, pretrained=str(weights))
    return ckpt, model, pretrained


def test_alpha_endpoints_are_exact(endpoints):
    ckpt, finetuned, pretrained = endpoints
    wise = WiseFT.load(ckpt)
    at0, at1, half = wise.at(0.0).state_dict(), wise.at(1.0).state_dict(), wise.at(0.5).state_dict()
    ft_state, pre_state = finetuned.state_dict(), pretrained.state_dict()
    for name, value in ft_state.items():
        if name.startswith("features."):
            assert torch.equal(at0[name], pre_state[name]), name
            if value.is_floating_point():
                torch.testing.assert_close(half[name], (pre_state[name] + value) / 2)
        assert torch.equal(at1[name], value), name
    assert torch.equal(at0["embed.weight"], ft_state["embed.weight"])
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(wise.at(1.0)(x), finetuned.eval()(x))


def test_cli_writes_a_loadable_checkpoint(endpoints, tmp_path):
    ckpt, finetuned, _ = endpoints
    out = tmp_path / "wise.safetensors"
    res = CliRunner().invoke(wise_cli, [str(ckpt), "--alpha", "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["alpha"] == 0.5
    model, cfg = load_model(out)
    assert cfg["wise_ft_alpha"] == 0.5 and cfg["input_size"] == 64
    bad = CliRunner().invoke(wise_cli, [str(ckpt), "--out", str(out)])
    assert bad.exit_code != 0 and "exactly one of --alpha or --choose-on" in bad.output


def test_random_init_checkpoint_is_refused(tmp_path):
    model = build_embedding_net("tiny_cnn", 8, pretrained=False)
    ckpt = save_checkpoint(tmp_path / "rand", model, model_config=model_config_of(model))
    res = CliRunner().invoke(wise_cli, [str(ckpt), "--alpha", "0.5", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "started from random weights" in res.output
