"""Config loading: YAML + overrides, typed, and unknown keys are clear errors."""

from pathlib import Path

import pytest

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
    root = Path(__file__).resolve().parents[1] / "configs"
    files = [f for f in sorted(root.glob("*.yaml")) if not f.name.startswith("ablation")]
    files += sorted((root / "recipes").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        load_config(f)
