"""Every recipe of configs/recipes/ trains a few steps on CPU (tiny_cnn, 64 px) and exports through
``dp-export`` to an ONNX model with the default model's contract; bad input is a clear error; the
trainer hooks the seed alternatives need (DAML phases, loss state on resume, tag lookup)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from support import REPO_ROOT

from deepproduct.sdk.dataset_manifest import read_dataset_manifest, write_dataset_manifest
from deepproduct.training.checkpoint import load_model
from deepproduct.training.config import load_config
from deepproduct.training.models.backbones import TinyConvNet
from deepproduct.training.models.tag_attention import TagAttentionNet
from deepproduct.training.train_cli import main as dp_train
from deepproduct.training.trainer import Trainer

RECIPES = REPO_ROOT / "configs" / "recipes"
ALL = ["contrastive", "robust_contrastive", "robust_multitask", "sgml", "lrml", "tag_attention", "daml"]


def tiny(manifest: Path, out: Path, **extra) -> list[str]:
    base = {"data.manifest": str(manifest), "out_dir": str(out), "model.backbone": "tiny_cnn",
            "model.pretrained": "false", "model.embedding_dim": 16, "data.image_size": 64,
            "data.products_per_batch": 3, "data.images_per_product": 3, "optim.epochs": 3,
            "optim.steps_per_epoch": 1, "optim.warmup_steps": 1, "log_every": 1, "threads": 1,
            "data.workers": 0, "data.eval_batch_size": 16, "eval_every": 10, "model.freeze_stages": 0}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    """A local tiny_cnn weights file: a 'pretrained' start, so the distillation branch can run."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_file(TinyConvNet().state_dict(), str(path))
    return str(path)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # trains and exports every recipe
@pytest.mark.parametrize("recipe", ALL)
def test_recipe_trains_and_exports_with_the_default_contract(recipe, tiny_manifest, tiny_weights, tmp_path):
    extra = {"model.pretrained": tiny_weights} if recipe == "robust_multitask" else {}
    cfg = load_config(RECIPES / f"{recipe}.yaml", tiny(tiny_manifest, tmp_path, name=recipe, **extra))
    trainer = Trainer(cfg, progress=False)
    if recipe == "robust_multitask":
        assert trainer.multitask == "distillation"
    result = trainer.train()
    assert 0.0 <= result.final_metrics["recall@1"] <= 1.0
    train = [r for r in _records(tmp_path / recipe) if r["type"] == "train"]
    assert len(train) == 3 and all(np.isfinite(r["loss"]) for r in train)
    if recipe == "daml":  # epoch 1 metric only, epoch 2 generator only, epoch 3 both (PML's schedule)
        assert "loss/daml/generator" not in train[0]
        assert "loss/daml/generator" in train[1] and "loss/daml/synthetic" not in train[1]
        assert "loss/daml/generator" in train[2] and "loss/daml/synthetic" in train[2]

    ckpt = tmp_path / recipe / "checkpoints" / "last.safetensors"
    from deepproduct.export.cli import main as dp_export

    out = tmp_path / "export"
    res = CliRunner().invoke(dp_export, [str(ckpt), "--out", str(out), "--formats", "onnx", "--quantize", "none",
                                         "--calib", str(tiny_manifest), "--parity-images", "2", "--no-clients"])
    assert res.exit_code == 0, res.output
    onnx_files = list(out.glob("*.onnx"))
    assert len(onnx_files) == 1
    sess = ort.InferenceSession(str(onnx_files[0]), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == "image" and outp.name == "embedding"
    assert inp.shape[1:] == [3, 64, 64] and not isinstance(inp.shape[0], int)  # NCHW, dynamic batch
    model, mcfg = load_model(ckpt)
    assert mcfg.get("architecture", "embedding_net") == cfg.model.architecture
    for n in (1, 3):
        x = torch.rand(n, 3, 64, 64)
        emb = sess.run(None, {"image": x.numpy()})[0]
        assert emb.shape == (n, 16)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
        with torch.no_grad():
            np.testing.assert_allclose(emb, model(x).numpy(), atol=1e-4)


def test_tag_attention_forward_is_the_tag_free_branch(tiny_manifest, tmp_path):
    cfg = load_config(RECIPES / "tag_attention.yaml", tiny(tiny_manifest, tmp_path))
    model = Trainer(cfg, progress=False).model
    assert isinstance(model, TagAttentionNet) and model.tag_vocab
    manifest = read_dataset_manifest(tiny_manifest)
    assert set(model.tag_vocab) == {t for r in manifest.select(split="train", domain="shop") for t in r.tags}
    model.eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.att_score.weight, std=0.5)  # non-uniform attention
        torch.nn.init.normal_(model.tag_prior, std=0.5)
        x = torch.rand(4, 3, 64, 64)
        plain = model(x)
        torch.testing.assert_close(model.embed_catalogue(x, None), plain)
        torch.testing.assert_close(model.embed_catalogue(x, [[], ["no-such-tag"], [], []]), plain)
        tagged = model.embed_catalogue(x, [[model.tag_vocab[0]]] * 4)
        assert not torch.allclose(tagged, plain)
        # in training: shop images (domain 0) use their product's tags, phone photos the prior
        model.tag_dropout = 0.0
        labels, domains = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
        out = model.forward_train(x, labels=labels, domains=domains).embedding
        torch.testing.assert_close(out[[1, 3]], plain[[1, 3]])
        assert not torch.allclose(out[[0, 2]], plain[[0, 2]])


def _strip(tiny_manifest: Path, name: str, attributes: bool, tags: bool) -> Path:
    rows = read_dataset_manifest(tiny_manifest).rows
    rows = [r.__class__(path=r.path, product_id=r.product_id, domain=r.domain, split=r.split,
                        attributes=r.attributes if attributes else {}, tags=r.tags if tags else ())
            for r in rows]
    return write_dataset_manifest(rows, tiny_manifest.parent / name)


@pytest.mark.parametrize("recipe,attributes,tags,message", [
    ("sgml", False, True, "needs product attribute columns (attr_<name>"),
    ("tag_attention", True, False, "needs catalogue tags in the manifest column 'tags'"),
])
def test_missing_column_is_a_clear_error(recipe, attributes, tags, message, tiny_manifest, tmp_path):
    csv = _strip(tiny_manifest, f"no_{recipe}.csv", attributes, tags)
    res = CliRunner().invoke(dp_train, ["--config", str(RECIPES / f"{recipe}.yaml"), "--quiet",
                                        *tiny(csv, tmp_path)])
    assert res.exit_code == 2, res.output
    assert message in res.output and str(csv) in res.output


def test_sgml_named_attribute_missing_is_named(tiny_manifest, tmp_path):
    res = CliRunner().invoke(dp_train, ["--config", str(RECIPES / "sgml.yaml"), "--quiet",
                                        *tiny(tiny_manifest, tmp_path), "losses.0.params.attributes=[colour, material]"])
    assert res.exit_code == 2 and "'material'" in res.output, res.output


def test_resume_restores_the_weights_inside_losses(tiny_manifest, tmp_path):
    """SGML's attribute head lives in the loss: a resumed run equals the uninterrupted one."""
    def make(name: str, epochs: int = 2) -> Trainer:
        cfg = load_config(RECIPES / "sgml.yaml", tiny(tiny_manifest, tmp_path, name=name, **{"optim.epochs": 2}))
        trainer = Trainer(cfg, progress=False)
        trainer.cfg.optim.epochs = epochs
        return trainer

    full = make("full")
    full.train()
    make("half", epochs=1).train()
    resumed = make("half")
    resumed.resume(tmp_path / "half" / "checkpoints" / "last.safetensors")
    resumed.train()
    head_full = full.losses[0][1].head.weight
    head_resumed = resumed.losses[0][1].head.weight
    torch.testing.assert_close(head_full, head_resumed, rtol=1e-4, atol=1e-5)
    a, _ = load_model(tmp_path / "full" / "checkpoints" / "last.safetensors")
    b, _ = load_model(tmp_path / "half" / "checkpoints" / "last.safetensors")
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)


def test_generator_only_epoch_leaves_the_model_alone(tiny_manifest, tmp_path):
    cfg = load_config(RECIPES / "daml.yaml", tiny(tiny_manifest, tmp_path))
    trainer = Trainer(cfg, progress=False)
    daml = trainer.losses[1][1]
    own = {id(p) for p in daml.parameters()}
    assert not own & {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    x = torch.rand(9, 3, 64, 64)
    labels, domains = torch.arange(3).repeat_interleave(3), torch.tensor([1, 0, 1] * 3)
    for epoch, model_moves in ((1, False), (2, True)):
        daml.set_epoch(epoch)
        before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        gen_before = [p.clone() for p in daml.generator.parameters()]
        trainer._set_train_mode()
        trainer._train_step(x, labels, domains, epoch)
        moved = any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
        assert moved == model_moves
        assert any(not torch.equal(a, b) for a, b in zip(gen_before, daml.generator.parameters(), strict=True))
