"""The trainer end to end on a tiny synthetic set: logs, checkpoints, resume, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from support.training import assert_resume_equals_uninterrupted, tiny_overrides

from deepproduct.sdk.dataset_manifest import read_dataset_manifest, write_dataset_manifest
from deepproduct.training.checkpoint import load_model
from deepproduct.training.config import load_config
from deepproduct.training.data.product_dataset import DataError
from deepproduct.training.train_cli import main as dp_train
from deepproduct.training.trainer import Trainer


@pytest.mark.slow  # a real training run
def test_train_writes_log_checkpoint_and_summary(tiny_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_manifest, tmp_path, name="a"))
    result = Trainer(cfg, progress=False).train()
    run = tmp_path / "a"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records].count("eval") == 2
    assert sum(r["type"] == "train" for r in records) == 6
    evals = [r for r in records if r["type"] == "eval"]
    assert {"recall@1", "recall@5", "recall@10", "recall@20", "map@r"} <= set(evals[-1])
    assert 0.0 <= evals[-1]["recall@1"] <= evals[-1]["recall@20"] <= 1.0
    assert (run / "checkpoints" / "last.safetensors").is_file()
    model, mcfg = load_model(run / "checkpoints" / "last.safetensors")
    assert mcfg["backbone"] == "tiny_cnn"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["multitask_variant"] == "none" and summary["steps"] == 6
    assert result.final_metrics["recall@1"] == evals[-1]["recall@1"]


@pytest.mark.slow  # two training runs
def test_resume_equals_uninterrupted_run(tiny_manifest, tmp_path):
    assert_resume_equals_uninterrupted(tiny_manifest, tmp_path)


@pytest.mark.slow  # pretrained backbone + teacher
def test_distillation_multitask_runs_on_pretrained_backbone(tiny_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(
        tiny_manifest, tmp_path, name="distil", **{"model.backbone": "efficientnet_lite0",
                                                    "model.pretrained": "true", "multitask.variant": "auto",
                                                    "model.freeze_stages": 5, "optim.epochs": 1,
                                                    "optim.steps_per_epoch": 2}))
    trainer = Trainer(cfg, progress=False)
    assert trainer.multitask == "distillation"
    trainer.train()
    records = [json.loads(x) for x in (tmp_path / "distil" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert all("loss/distillation" in r for r in train)
    # Step 1 starts from the teacher's own weights: the distillation term is zero there.
    assert train[0]["loss/distillation"] == pytest.approx(0.0, abs=1e-4)


def test_imagenet_folder_multitask_variant(tiny_manifest, tmp_path):
    import timm.data

    synsets = timm.data.ImageNetInfo().label_names()[:2]
    folder = tmp_path / "imagenet"
    for k, syn in enumerate(synsets):
        (folder / syn).mkdir(parents=True)
        for j in range(3):
            Image.new("RGB", (40, 30), (200 * k, 40 * j, 90)).save(folder / syn / f"img_{j}.JPEG")
    cfg = load_config(None, tiny_overrides(tiny_manifest, tmp_path, name="inet", **{
        "data.imagenet_folder": str(folder), "multitask.variant": "auto", "optim.epochs": 1,
        "optim.steps_per_epoch": 2, "data.imagenet_batch": 2}))
    trainer = Trainer(cfg, progress=False)
    assert trainer.multitask == "imagenet"
    trainer.train()
    records = [json.loads(x) for x in (tmp_path / "inet" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss/imagenet"] > 0 for r in records if r["type"] == "train")


def _copy_dataset(manifest: Path, dest: Path) -> Path:
    shutil.copytree(manifest.parent, dest)
    return dest / manifest.name


def test_missing_image_is_named(tiny_manifest, tmp_path):
    csv = _copy_dataset(tiny_manifest, tmp_path / "data")
    row = read_dataset_manifest(csv).select(split="train")[0]
    (csv.parent / row.path).unlink()
    with pytest.raises(DataError, match=row.path.replace(".", r"\.")):
        Trainer(load_config(None, tiny_overrides(csv, tmp_path)), progress=False)


def test_corrupt_image_is_named(tiny_manifest, tmp_path):
    csv = _copy_dataset(tiny_manifest, tmp_path / "data")
    rows = read_dataset_manifest(csv).rows
    victim = rows[0]
    (csv.parent / victim.path).write_bytes(b"not an image at all")
    write_dataset_manifest(rows, csv)
    trainer = Trainer(load_config(None, tiny_overrides(csv, tmp_path, **{"optim.epochs": 1})), progress=False)
    with pytest.raises(DataError, match="not a readable image"):
        trainer.train() if victim.split == "train" else trainer.evaluate()


@pytest.mark.parametrize("override,message", [
    ("model.backbone=resnet9000", "unknown backbone 'resnet9000'"),
    ("losses.0.name=magic_loss", "magic_loss"),
    ("optim.lrate=1", "unknown config key optim.lrate"),
    ("data.products_per_batch=500", "cannot fill a P x K"),
])
def test_cli_bad_input_is_a_clear_error(tiny_manifest, tmp_path, override, message):
    runner = CliRunner()
    args = [*tiny_overrides(tiny_manifest, tmp_path), override, "--quiet"]
    result = runner.invoke(dp_train, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_eval_only_on_a_test_only_manifest(tiny_manifest, tmp_path):
    """A transfer set has no training rows: --eval-only must score it, training must refuse it."""
    csv = _copy_dataset(tiny_manifest, tmp_path / "data")
    rows = read_dataset_manifest(csv).select(split="test")
    write_dataset_manifest(rows, csv)
    runner = CliRunner()
    result = runner.invoke(dp_train, [*tiny_overrides(csv, tmp_path, name="transfer"), "--eval-only", "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "transfer" / "eval.json").read_text())
    assert record["queries"] > 0 and 0.0 <= record["recall@1"] <= 1.0
    with pytest.raises(DataError, match="no rows with split=train"):
        Trainer(load_config(None, tiny_overrides(csv, tmp_path)), progress=False)
    train_only = tmp_path / "data" / "train_only.csv"
    write_dataset_manifest(read_dataset_manifest(tiny_manifest).select(split="train"), train_only)
    result = runner.invoke(dp_train, [*tiny_overrides(train_only, tmp_path), "--eval-only", "--quiet"])
    assert result.exit_code == 2 and "no rows with split=test" in result.output
