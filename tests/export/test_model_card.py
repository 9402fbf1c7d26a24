"""The model card (README.md) is generated from the manifest, in the Hugging Face convention."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deepproduct.export import model_card
from deepproduct.export.manifest import minimal_manifest, write_manifest


def _summary(run: Path, transfer: bool = True) -> Path:
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.safetensors"
    ckpt.write_bytes(b"weights")
    final = {"type": "eval", "epoch": 4, "step": 140, "recall@1": 0.7527, "recall@5": 0.959, "recall@10": 0.986,
             "recall@20": 0.995, "map@r": 0.705, "protocol": "consumer-to-shop", "queries": 368, "gallery": 362}
    if transfer:
        final["transfer"] = {"name": "real-photo transfer set", "recall@1": 0.412, "recall@5": 0.65,
                             "queries": 120, "gallery": 118}
    (run / "summary.json").write_text(json.dumps({"final": final, "steps": 140}))
    return ckpt


def _export(folder: Path, evaluation: dict | None) -> dict:
    folder.mkdir()
    (folder / "model_fp32.onnx").write_bytes(b"onnx")
    (folder / "model_int8.pte").write_bytes(b"pte-int8" * 100)
    m = minimal_manifest([("model_fp32.onnx", "onnx", "fp32"), ("model_int8.pte", "executorch", "int8")],
                         embedding_dim=16, input_size=64, embedding_space_id="ab" * 32, name="tiny-card")
    m["model"]["license"] = "Apache-2.0"
    m["parity"].update({"images": 40, "queries": 20, "gallery": 20, "reference_recall_at_1": 0.8,
                        "source": "test split"})
    m["artefacts"][0]["parity"] = [{"runtime": "onnxruntime", "cosine_mean": 0.9999991, "cosine_min": 0.99999,
                                    "threshold": 0.9999, "recall_at_1": 0.8, "passed": True}]
    m["artefacts"][1]["parity"] = [{"runtime": "executorch runtime (XNNPACK)", "cosine_mean": 0.9954,
                                    "cosine_min": 0.98, "threshold": 0.99, "recall_at_1": 0.75, "passed": True}]
    for a in m["artefacts"]:
        a["size_bytes"] = (folder / a["file"]).stat().st_size
    if evaluation is not None:
        m["evaluation"] = evaluation
    model_card.write(folder, m)
    write_manifest(folder, m)
    return json.loads((folder / "manifest.json").read_text())


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_evaluation_from_a_dp_train_run(tmp_path):
    ev = model_card.evaluation_from_run(_summary(tmp_path / "run"))
    assert [s["key"] for s in ev["sets"]] == ["test", "transfer"]
    assert ev["sets"][0]["metrics"]["recall@1"] == 0.7527 and ev["sets"][0]["queries"] == 368
    assert ev["sets"][1]["name"] == "real-photo transfer set" and ev["sets"][1]["metrics"]["recall@5"] == 0.65
    # another checkpoint of the run has no recorded evaluation
    other = tmp_path / "run" / "checkpoints" / "epoch2.safetensors"
    other.write_bytes(b"x")
    assert model_card.evaluation_from_run(other) is None
    assert model_card.evaluation_from_run(tmp_path / "nowhere" / "last.safetensors") is None


def test_evaluation_reads_dp_train_flat_transfer_keys(tmp_path):
    ckpt = _summary(tmp_path / "run", transfer=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    summary["final"] |= {"transfer/recall@1": 0.5367, "transfer/recall@5": 0.8, "transfer/pooled/recall@1": 0.54,
                         "transfer/queries": 600, "transfer/gallery": 300}
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    ev = model_card.evaluation_from_run(ckpt)
    assert [s["key"] for s in ev["sets"]] == ["test", "transfer"]
    # the shipped head's figures, not the pooled features'
    assert ev["sets"][1]["metrics"] == {"recall@1": 0.5367, "recall@5": 0.8}
    assert ev["sets"][1]["queries"] == 600 and ev["sets"][1]["gallery"] == 300


def test_card_front_matter_follows_the_manifest(tmp_path):
    ev = model_card.evaluation_from_run(_summary(tmp_path / "run"))
    manifest = _export(tmp_path / "export", ev)
    text = (tmp_path / "export" / "README.md").read_text()
    fm = _front_matter(text)
    assert fm["license"] == "apache-2.0" and fm["pipeline_tag"] == "image-feature-extraction"
    assert {"onnx", "executorch", "int8", "image-retrieval"} <= set(fm["tags"])
    index = fm["model-index"][0]
    assert index["name"] == "tiny-card"
    by_dataset = {r["dataset"]["type"]: r for r in index["results"] if r["dataset"]["type"] != "parity"}
    assert {m["type"]: m["value"] for m in by_dataset["test"]["metrics"]}["recall@1"] == 75.27
    assert {m["type"]: m["value"] for m in by_dataset["transfer"]["metrics"]}["recall@1"] == 41.2
    parity = [r for r in index["results"] if r["dataset"]["type"] == "parity"]
    assert [r["task"]["name"] for r in parity] == ["model_fp32.onnx via onnxruntime",
                                                   "model_int8.pte via executorch runtime (XNNPACK)"]
    assert parity[1]["metrics"][0]["value"] == 0.9954
    for heading in ("## Intended use", "## Input and preprocessing", "## Limitations", "## Results"):
        assert heading in text
    # the card is hashed in the manifest like every file, and re-renders byte for byte
    assert any(f["path"] == "README.md" for f in manifest["files"])
    assert model_card.card_problems(tmp_path / "export", manifest) == []


def test_hand_edit_is_caught(tmp_path):
    manifest = _export(tmp_path / "export", None)
    card = tmp_path / "export" / "README.md"
    assert "No training-run evaluation" in card.read_text()
    card.write_text(card.read_text().replace("Recall@1", "Recall@1 (best in class)", 1))
    problems = model_card.card_problems(tmp_path / "export", manifest)
    assert problems and "differs from what manifest.json renders to" in problems[0]


def test_unknown_licence_is_other(tmp_path):
    manifest = _export(tmp_path / "export", None)
    manifest["model"]["license"] = "Proprietary-1.0"
    assert _front_matter(model_card.render(manifest))["license"] == "other"
