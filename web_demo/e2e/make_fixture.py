"""Builds the web demo's end-to-end fixture with the project's own tools:

    python web_demo/e2e/make_fixture.py OUT_DIR

1. a synthetic catalogue (synth_catalogue.py): 16 products x 2 shop images, 3 query photos;
2. a checkpoint: EfficientNet-Lite0 with its shipped ImageNet weights and a seeded 128-d head
   (``save_checkpoint``; no training needed for retrieval on these pictures);
3. ``dp-export CHECKPOINT --formats onnx`` -> OUT_DIR/model/ (manifest.json + the ONNX model,
   normalisation inside the graph, parity-checked by the exporter);
4. ``dp-search build`` -> OUT_DIR/catalogue.dpindex;
5. the Python SDK's answers (``ProductSearch.search_image(..., unique_products=True)``: distinct
   products with their best image's position, ids, scores) for each query
   -> OUT_DIR/expected.json;
6. ``deepproduct.sdk.bundle`` -> OUT_DIR/bundle/ (the web bundle, exactly as for the real demo),
   and OUT_DIR/mismatch/ (a bundle whose manifest names another embedding space).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_catalogue import write_catalogue  # noqa: E402

from deepproduct.sdk.bundle import write_bundle  # noqa: E402

EMBEDDING_DIM = 128
BIN = Path(sys.executable).parent


def make_checkpoint(path: Path) -> Path:
    import torch

    from deepproduct.training.checkpoint import model_config_of, save_checkpoint
    from deepproduct.training.models.embedding_net import build_embedding_net

    torch.manual_seed(0)
    net = build_embedding_net("efficientnet_lite0", embedding_dim=EMBEDDING_DIM, pretrained=True).eval()
    return save_checkpoint(path, net, model_config=model_config_of(net))


def export_with_dp_export(checkpoint: Path, out: Path, calib: Path) -> None:
    """``dp-export`` writes the model folder: the real exporter, its manifest, its parity check."""
    cmd = [str(BIN / "dp-export"), str(checkpoint), "--out", str(out), "--formats", "onnx", "--quantize", "none",
           "--calib", str(calib), "--calib-count", "8", "--parity-images", "8", "--no-clients",
           "--name", "e2e-fixture"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def build(out: Path) -> None:
    from deepproduct.sdk.search import ProductSearch

    if out.exists():
        shutil.rmtree(out)
    work = out / "work"
    gallery, queries = write_catalogue(work)
    model_dir = out / "model"
    export_with_dp_export(make_checkpoint(work / "checkpoint"), model_dir, work / "gallery")
    index_path = out / "catalogue.dpindex"
    subprocess.run([str(BIN / "dp-search"), "build", "--model", str(model_dir), "--images", str(work / "gallery"),
                    "--out", str(index_path), "--threads", "1", "--no-progress"], check=True, stdout=subprocess.DEVNULL)

    search = ProductSearch.open(model_dir, index_path, threads=1)
    expected = []
    for q in queries:
        hits = search.search_image(work / q["path"], k=5, unique_products=True)  # the page shows products
        expected.append({"sample": f"samples/{Path(q['path']).name}", "product_id": q["product_id"],
                         "title": q["title"],
                         "top": [{"position": h.position, "product_id": h.product_id, "score": h.score}
                                 for h in hits]})
    (out / "expected.json").write_text(json.dumps({"queries": expected}, indent=2) + "\n")
    write_bundle(model_dir, index_path, out / "bundle", "web",
                 samples=[(work / q["path"], q["product_id"]) for q in queries])

    # A space-id mismatch bundle: the same index, a manifest naming another embedding space
    # (the bundling command refuses to write one, so it is assembled by hand).
    manifest = json.loads((model_dir / "manifest.json").read_text())
    onnx_file = next(a["file"] for a in manifest["artefacts"] if a["format"] == "onnx")
    bad = out / "mismatch"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({**manifest, "embedding_space_id": "f" * 64}, indent=2))
    (bad / "bundle.json").write_text(json.dumps({
        "manifest": "manifest.json", "manifest_schema": "../bundle/manifest.schema.json",
        "index": "../bundle/catalogue.dpindex",
        "models": [{"file": f"../bundle/{onnx_file}", "format": "onnx", "precision": "fp32"}]}))
    shutil.rmtree(work)

    wrong = [e["sample"] for e in expected if e["top"][0]["product_id"] != e["product_id"]]
    if wrong:
        # The browser test checks the page against the SDK; the fixture itself must be sound.
        raise SystemExit(f"fixture unusable: the Python SDK's top-1 is wrong for {wrong}")
    print(f"fixture in {out}: {len(gallery)} gallery images, {len(expected)} queries, "
          f"model {manifest['model']['name']} ({manifest['embedding_space_id']})")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
