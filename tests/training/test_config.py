"""Config loading: YAML + overrides, typed, and unknown keys are clear errors."""

import re
from pathlib import Path

import pytest
from support import REPO_ROOT

from deepproduct.training.config import ConfigError, load_config


def test_defaults_match_method_md():
    cfg = load_config()
    assert cfg.model.backbone == "efficientnet_lite0"
    assert cfg.model.embedding_dim == 128
    assert cfg.losses[0].name == "robust_contrastive"
    assert cfg.multitask.lambda_cls == 0.5 and cfg.multitask.temperature == 2.0


def test_yaml_then_overrides(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 0.001\n  epochs: 2\nlosses:\n  - name: contrastive\n    params: {m_neg: 0.8}\n")
    cfg = load_config(f, ["optim.epochs=3", "losses.0.weight=0.5", "model.pretrained=false"])
    assert cfg.optim.lr == pytest.approx(0.001)
    assert cfg.optim.epochs == 3
    assert cfg.losses[0].name == "contrastive" and cfg.losses[0].weight == 0.5
    assert cfg.losses[0].params == {"m_neg": 0.8}
    assert cfg.model.pretrained is False


def test_unknown_key_names_it_and_suggests(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"optim\.lrr.*optim\.lr"):
        load_config(None, ["optim.lrr=1"])
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  imagesize: 64\n")
    with pytest.raises(ConfigError, match=r"data\.imagesize"):
        load_config(f)


def test_wrong_type_and_bad_override_syntax():
    with pytest.raises(ConfigError, match="optim.epochs: expected int"):
        load_config(None, ["optim.epochs=lots"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.epochs"])
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.yaml")


def test_shipped_configs_load():
    """Every dp-train config we ship parses (the ablation config is a list of these, not one)."""
    root = REPO_ROOT / "configs"
    files = [f for f in sorted(root.glob("*.yaml")) if not f.name.startswith("ablation")]
    files += sorted((root / "recipes").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        load_config(f)


@pytest.mark.parametrize(("override", "message"), [
    ("optim.epochs=0", "optim.epochs: must be at least 1, got 0"),
    ("optim.epochs=-1", "optim.epochs: must be at least 1, got -1"),
    ("optim.lr=-1", "optim.lr: must be greater than 0, got -1.0"),
    ("optim.lr=nan", "optim.lr: expected float, got 'nan' (str)"),
    ("optim.lr=.inf", "optim.lr: must be a finite number, got inf"),
    ("model.embedding_dim=0", "model.embedding_dim: must be at least 1, got 0"),
    ("data.image_size=0", "data.image_size: must be at least 32, got 0"),
    ("losses.0.weight=-1", "losses.0.weight: must be at least 0, got -1.0"),
    ("optim.steps_per_epoch=0", "optim.steps_per_epoch: must be at least 1, got 0"),
])
def test_nonsense_values_are_refused_before_anything_is_written(tmp_path: Path, override: str, message: str):
    """A value out of range is a one-line error naming the key; dp-train exits 2 and writes nothing."""
    from click.testing import CliRunner

    from deepproduct.training.train_cli import main as dp_train

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])
    result = CliRunner().invoke(dp_train, [f"out_dir={tmp_path / 'runs'}", "name=x", override, "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"dp-train: error: {message}"
    assert not (tmp_path / "runs").exists()


def test_optional_keys_may_be_empty_and_boundaries_are_accepted():
    cfg = load_config(None, ["optim.steps_per_epoch=null", "optim.grad_clip=null", "optim.warmup_steps=0",
                             "data.image_size=32", "optim.epochs=1", "head.orthogonal_weight=0"])
    assert cfg.optim.grad_clip is None and cfg.data.image_size == 32
