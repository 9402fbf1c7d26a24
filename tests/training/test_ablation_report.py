"""The ablation's report module: the table (with and without transfer columns, hand-checked cells),
the results files and plot, and a tiny ablation run scored on a transfer set."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import yaml
from click.testing import CliRunner
from support import REPO_ROOT

from deepproduct.sdk.dataset_manifest import read_dataset_manifest, write_dataset_manifest
from deepproduct.training.ablation import main as ablation
from deepproduct.training.ablation_report import markdown_table, write_results

CONFIGS = REPO_ROOT / "configs"
ROWS = [
    {"name": "base", "label": "Base", "config": "b.yaml", "recall@1": 0.5, "recall@5": 0.7, "recall@10": 0.8,
     "map@r": 0.45, "transfer/recall@1": 0.25, "transfer/pooled/recall@1": 0.4, "steps": 10, "train_seconds": 5.0,
     "images_per_s": 3.21},
    {"name": "new", "label": "New", "config": "n.yaml", "recall@1": 0.6, "recall@5": 0.75, "recall@10": 0.85,
     "map@r": 0.5, "steps": 10, "train_seconds": 6.0},
]


def test_table_has_transfer_columns_only_when_scored():
    table = markdown_table(ROWS, "base").splitlines()
    assert table[0] == ("| recipe | config | Recall@1 | Recall@5 | Recall@10 | MAP@R | R@1 vs robust contrastive | "
                        "transfer R@1 (embedding) | transfer R@1 (pooled backbone) | train time (s) | img/s | steps |")
    assert table[2] == ("| Base | `b.yaml` | 0.5000 | 0.7000 | 0.8000 | 0.4500 | - | 0.2500 | 0.4000 | 5 | 3.2 | 10 |")
    assert table[3] == "| New | `n.yaml` | 0.6000 | 0.7500 | 0.8500 | 0.5000 | +10.0 pts | - | - | 6 |  | 10 |"
    plain = [{k: v for k, v in r.items() if not k.startswith("transfer/")} for r in ROWS]
    assert "transfer" not in markdown_table(plain, "base")
    assert all(line.count("|") == 11 for line in markdown_table(plain, "base").splitlines())


def test_write_results_files(tmp_path):
    meta = {"command": "c", "seed": 0, "budget": "b", "data": "d", "machine": "m", "transfer": "`t.csv`"}
    table = write_results(tmp_path, ROWS, meta, "base", "title", "", 60.0, 30.0)
    md = (tmp_path / "results.md").read_text()
    assert table in md and "Transfer set: `t.csv`" in md
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == ROWS
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # two tiny recipes
def test_ablation_with_a_transfer_set(tiny_manifest, tmp_path):
    m = read_dataset_manifest(tiny_manifest)
    transfer = write_dataset_manifest(
        [dataclasses.replace(r, product_id=f"tr-{r.product_id}", path=os.path.relpath(m.abspath(r), tmp_path))
         for r in m.select(split="test")], tmp_path / "transfer.csv")
    spec = yaml.safe_load((CONFIGS / "ablation.yaml").read_text())
    spec["common"].update({"model.backbone": "tiny_cnn", "model.pretrained": False, "model.embedding_dim": 16,
                           "data.image_size": 64, "data.products_per_batch": 3, "data.images_per_product": 3,
                           "optim.epochs": 1, "optim.steps_per_epoch": 2, "optim.warmup_steps": 1, "threads": 1,
                           "data.workers": 0, "data.eval_batch_size": 16, "multitask.variant": "none"})
    spec["recipes"] = [r for r in spec["recipes"] if r["name"] in {"off_the_shelf", "robust_contrastive"}]
    for r in spec["recipes"]:
        r["config"] = str(CONFIGS / r["config"])
    config = tmp_path / "ablation.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    res = CliRunner().invoke(ablation, ["--config", str(config), "--out", str(out), "--data", str(tiny_manifest),
                                        "--transfer", str(transfer)])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert "transfer/recall@1" not in rows["off_the_shelf"]  # no trained head off the shelf: pooled only
    assert 0.0 <= rows["off_the_shelf"]["transfer/pooled/recall@1"] <= 1.0
    assert 0.0 <= rows["robust_contrastive"]["transfer/recall@1"] <= 1.0
    assert "transfer R@1 (embedding)" in (out / "results.md").read_text()
