"""The ablation command on a tiny set: table, JSON and bar plot; finished recipes are reused."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from support import REPO_ROOT

from deepproduct.training.ablation import main as ablation

CONFIGS = REPO_ROOT / "configs"


@pytest.mark.slow  # trains every recipe
def test_ablation_writes_table_json_and_plot(tiny_manifest, tmp_path):
    spec = yaml.safe_load((CONFIGS / "ablation.yaml").read_text())
    spec["common"].update({"model.backbone": "tiny_cnn", "model.pretrained": False, "model.embedding_dim": 16,
                           "data.image_size": 64, "data.products_per_batch": 3, "data.images_per_product": 3,
                           "optim.epochs": 1, "optim.steps_per_epoch": 2, "optim.warmup_steps": 1, "threads": 1,
                           "data.workers": 0, "data.eval_batch_size": 16})
    keep = {"off_the_shelf", "robust_contrastive", "tag_attention"}
    spec["recipes"] = [r for r in spec["recipes"] if r["name"] in keep]
    for r in spec["recipes"]:
        r["config"] = str(CONFIGS / r["config"])
        if r.get("ctx_rerank"):
            r["ctx_rerank"]["steps"] = 3
    config = tmp_path / "ablation.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    args = ["--config", str(config), "--out", str(out), "--data", str(tiny_manifest)]
    res = CliRunner().invoke(ablation, args)
    assert res.exit_code == 0, res.output
    table = (out / "results.md").read_text()
    assert "| Recall@1 | Recall@5 | Recall@10 | MAP@R |" in table and "Seed: 0" in table
    for label in ("Off-the-shelf", "Robust contrastive", "Tag attention", "gallery embedded with its tags",
                  "CtxYNet re-rank"):
        assert label in table
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["off_the_shelf", "robust_contrastive", "tag_attention",
                                         "tag_attention+tagged_gallery", "tag_attention+ctx_rerank"]
    assert all(0.0 <= r["recall@1"] <= r["recall@10"] <= 1.0 for r in rows)
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = CliRunner().invoke(ablation, [*args, "--only", "robust_contrastive"])
    assert again.exit_code == 0 and "reusing" in again.output
    bad = CliRunner().invoke(ablation, [*args, "--only", "magic"])
    assert bad.exit_code == 2 and "unknown recipe(s) magic" in bad.output
    # --seed: the training seed changes (a changed effective config is retrained, never reused) and
    # is recorded; the data stays the same
    seeded = CliRunner().invoke(ablation, [*args, "--only", "robust_contrastive", "--seed", "3"])
    assert seeded.exit_code == 0, seeded.output
    assert "reusing" not in seeded.output
    meta = json.loads((out / "results.json").read_text())
    assert meta["seed"] == 3 and "--seed 3" in meta["command"]
    assert yaml.safe_load((out / "runs" / "robust_contrastive" / "config.yaml").read_text())["seed"] == 3
