"""Builds the web demo's end-to-end fixture: a real exported ONNX model, a gallery index over a
small synthetic catalogue, sample query photos, and the Python SDK's answers for them.

    python web_demo/e2e/make_fixture.py OUT_DIR

writes OUT_DIR/model/ (manifest.json + model.onnx, as the exporter lays them out),
OUT_DIR/catalogue.dpindex, OUT_DIR/bundle/ (the web bundle, written by
``deepproduct.sdk.bundle`` exactly as for the real demo), OUT_DIR/mismatch/ (a bundle whose
manifest names another embedding space) and OUT_DIR/expected.json (query -> expected product
and the SDK's top-5 ids and scores) for the browser test.

Model: EfficientNet-Lite0 with its shipped ImageNet weights and a seeded 128-d head, exported
with the dynamo ONNX exporter (normalisation inside the graph: RGB [0, 1] in, unit vector out),
the project's default architecture. Embeddings for the index and the expected answers come from
onnxruntime on ``deepproduct.sdk.preprocessing.preprocess_image`` tensors, i.e. the Python SDK.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_catalogue import write_catalogue  # noqa: E402

from deepproduct.sdk.bundle import write_bundle  # noqa: E402
from deepproduct.sdk.index_format import write_index_file  # noqa: E402
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image  # noqa: E402

EMBEDDING_DIM = 128
SPACE_ID = "e2e-fixture-efficientnet_lite0-128-seed0"


def export_model(out: Path, spec: PreprocessingSpec) -> dict:
    """EmbeddingNet(efficientnet_lite0) -> model.onnx; returns the manifest dict."""
    import onnx
    import torch

    from deepproduct.training.models.embedding_net import build_embedding_net

    torch.manual_seed(0)
    net = build_embedding_net("efficientnet_lite0", embedding_dim=EMBEDDING_DIM, pretrained=True).eval()
    path = out / "model.onnx"
    example = torch.rand(1, 3, spec.input_size, spec.input_size)
    program = torch.onnx.export(net, (example,), dynamo=True, input_names=["image"], output_names=["embedding"],
                                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
                                external_data=False, verbose=False)
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return {
        "format": "deepproduct-model-manifest",
        "manifest_version": 1,
        "model": {"name": "e2e-fixture", "version": "0", "backbone": "efficientnet_lite0",
                  "embedding_dim": EMBEDDING_DIM},
        "embedding_space_id": SPACE_ID,
        "preprocessing": spec.to_dict(),
        "artefacts": [{"file": "model.onnx", "format": "onnx", "precision": "fp32", "layout": "NCHW",
                       "input_name": "image", "output_name": "embedding",
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}],
    }


def embed(session, paths: list[Path], spec: PreprocessingSpec) -> np.ndarray:
    rows = [session.run(["embedding"], {"image": preprocess_image(p, spec)})[0][0] for p in paths]
    return np.asarray(rows, dtype=np.float32)


def build(out: Path) -> None:
    import onnxruntime as ort

    if out.exists():
        shutil.rmtree(out)
    work = out / "catalogue"
    gallery, queries = write_catalogue(work)
    spec = PreprocessingSpec()
    model_dir = out / "model"
    model_dir.mkdir(parents=True)
    manifest = export_model(model_dir, spec)
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    vectors = embed(session, [work / g["path"] for g in gallery], spec)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [{"title": g["title"], "category": g["category"], "image": g["path"]} for g in gallery]
    write_index_file(out / "catalogue.dpindex", vectors=vectors, product_ids=[g["product_id"] for g in gallery],
                     items=items, embedding_space_id=SPACE_ID, storage="float32",
                     info={"created_by": "web_demo/e2e/make_fixture.py"})

    expected = []
    for q in queries:
        name = Path(q["path"]).name
        qv = embed(session, [work / q["path"]], spec)[0]
        qn = (qv / np.sqrt(np.sum(qv.astype(np.float64) ** 2))).astype(np.float32)
        scores = vectors.astype(np.float64) @ qn.astype(np.float64)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:5]
        expected.append({"sample": f"samples/{name}", "product_id": q["product_id"], "title": q["title"],
                         "top": [{"position": i, "product_id": gallery[i]["product_id"], "score": float(scores[i])}
                                 for i in order]})
    (out / "expected.json").write_text(json.dumps({"queries": expected}, indent=2) + "\n")
    write_bundle(model_dir, out / "catalogue.dpindex", out / "bundle", "web",
                 samples=[(work / q["path"], q["product_id"]) for q in queries])
    shutil.rmtree(work)
    # A space-id mismatch bundle: the same index, a manifest naming another embedding space
    # (the bundling command refuses to write one, so it is assembled by hand).
    bad = out / "mismatch"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({**manifest, "embedding_space_id": "some-other-model"}, indent=2))
    (bad / "bundle.json").write_text(json.dumps({
        "manifest": "manifest.json", "index": "../bundle/catalogue.dpindex",
        "models": [{"file": "../bundle/model.onnx", "format": "onnx", "precision": "fp32"}]}))
    wrong = [e["sample"] for e in expected if e["top"][0]["product_id"] != e["product_id"]]
    if wrong:
        # The browser test checks the page against the SDK; the fixture itself must be sound.
        raise SystemExit(f"fixture unusable: the Python SDK's top-1 is wrong for {wrong}")
    print(f"fixture in {out}: {len(gallery)} gallery images, {len(expected)} queries")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
