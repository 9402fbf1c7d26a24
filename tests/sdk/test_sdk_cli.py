"""dp-search through click's CliRunner: build, query, info, evaluate, bundle, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from support.tiny_model import build_tiny_model, write_catalogue, write_dataset_manifest

from deepproduct.sdk import embedders
from deepproduct.sdk.cli import main, parse_filters
from deepproduct.sdk.gallery_index import GalleryIndex


@pytest.fixture()
def catalogue(tmp_path) -> tuple[Path, list]:
    root = tmp_path / "catalogue"
    items = write_catalogue(root, products=6, per_product=2)
    (root / "products.json").write_text(json.dumps({"p000": {"title": "Blue mug", "category": "mug"}}))
    return root, items


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_build_info_query(tiny_model_dir, catalogue, tmp_path):
    root, items = catalogue
    out = tmp_path / "cat.dpindex"
    res = run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--storage", "int8", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "12 items, 6 products" in res.output
    index = GalleryIndex.load(out)
    assert index.metadata[0] == {"title": "Blue mug", "category": "mug", "image": "p000/img0.png"}

    res = run("info", out)
    assert res.exit_code == 0 and "checksum: ok" in res.output and "storage: int8" in res.output
    doc = json.loads(run("info", out, "--json").output)
    assert doc["count"] == 12 and doc["products"] == 6 and doc["format_version"] == 1

    res = run("query", "--index", out, "--model", tiny_model_dir, items[3][0], items[0][0], "-k", "3")
    assert res.exit_code == 0, res.output
    assert "rank" in res.output and "p001" in res.output and "Blue mug" in res.output
    doc = json.loads(run("query", "--index", out, "--model", tiny_model_dir, items[3][0], "-k", "2", "--json").output)
    assert doc[0]["results"][0]["product_id"] == "p001" and len(doc[0]["results"]) == 2
    doc = json.loads(run("query", "--index", out, "--model", tiny_model_dir, items[3][0], "--filter", "category=mug",
                         "--json").output)
    assert [r["product_id"] for r in doc[0]["results"]] == ["p000"]  # distinct products by default
    doc = json.loads(run("query", "--index", out, "--model", tiny_model_dir, items[3][0], "--filter", "category=mug",
                         "--images", "--json").output)
    assert [r["product_id"] for r in doc[0]["results"]] == ["p000", "p000"]
    doc = json.loads(run("query", "--index", out, "--model", tiny_model_dir, items[3][0], "-k", "6", "--json").output)
    assert sorted(r["product_id"] for r in doc[0]["results"]) == [f"p{i:03d}" for i in range(6)]
    sheet = tmp_path / "q.png"
    res = run("query", "--index", out, "--model", tiny_model_dir, items[3][0], "--contact-sheet", sheet)
    assert res.exit_code == 0 and sheet.stat().st_size > 1000


def test_parse_filters():
    assert parse_filters([]) is None
    assert parse_filters(["category=mug", "category=hat", "n:=3", "x=a=b"]) == {
        "category": ["mug", "hat"], "n": 3, "x": "a=b"}


def test_bad_image_stops_build_or_is_skipped(tiny_model_dir, catalogue, tmp_path):
    root, _ = catalogue
    (root / "p002" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    out = tmp_path / "cat.dpindex"
    res = run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--no-progress")
    assert res.exit_code == 1 and "corrupt.jpg" in res.output and "nothing was written" in res.output
    assert not out.exists()
    res = run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--no-progress", "--skip-bad")
    assert res.exit_code == 0 and "corrupt.jpg" in res.output and "12 items" in res.output
    assert GalleryIndex.load(out).info["skipped_images"] == 1


def test_interrupted_build_keeps_previous_index(tiny_model_dir, catalogue, tmp_path, monkeypatch):
    root, _ = catalogue
    out = tmp_path / "cat.dpindex"
    assert run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--no-progress").exit_code == 0
    before = out.read_bytes()
    calls = {"n": 0}
    real = embedders.OnnxEmbedder._run

    def interrupted(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("Ctrl-C half-way through the catalogue")
        return real(self, batch)

    monkeypatch.setattr(embedders.OnnxEmbedder, "_run", interrupted)
    res = run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--batch-size", "4", "--no-progress")
    assert res.exit_code == 1 and "Aborted" in res.output and calls["n"] == 2  # click's Ctrl-C handling
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.dpindex", "catalogue"]


def test_damaged_and_mismatched_index_errors(tiny_model_dir, catalogue, tmp_path):
    root, items = catalogue
    out = tmp_path / "cat.dpindex"
    run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--no-progress")
    other = build_tiny_model(tmp_path / "other", seed=3)
    res = run("query", "--index", out, "--model", other, items[0][0])
    assert res.exit_code == 1 and "embedding space" in res.output and "cat.dpindex" in res.output
    data = bytearray(out.read_bytes())
    data[-20] ^= 0xFF
    out.write_bytes(bytes(data))
    res = run("info", out)
    assert res.exit_code == 1 and "checksum: BAD" in res.output
    out.write_bytes(bytes(data[:300]))
    res = run("query", "--index", out, "--model", tiny_model_dir, items[0][0])
    assert res.exit_code == 1 and "truncated" in res.output


def test_evaluate_from_dataset_manifest(tiny_model_dir, tmp_path):
    root = tmp_path / "data"
    items = write_catalogue(root, products=5, per_product=3)
    csv = write_dataset_manifest(root, items)
    out = tmp_path / "shop.dpindex"
    res = run("build", "--model", tiny_model_dir, "--images", csv, "--split", "test", "--domain", "shop",
              "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    index = GalleryIndex.load(out)
    assert len(index) == 5 and index.metadata[0]["category"] == "mug" and index.metadata[0]["domain"] == "shop"
    res = run("evaluate", "--index", out, "--model", tiny_model_dir, "--queries", csv, "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output)
    assert metrics["queries"] == 10 and metrics["unmatched_queries"] == 0 and metrics["gallery"] == 5
    assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] == 1.0
    for k in (1, 5, 10):  # one image per product here: both figures coincide
        assert metrics[f"product_recall@{k}"] == metrics[f"recall@{k}"]
    sheet = tmp_path / "report" / "sheet.png"
    text = run("evaluate", "--index", out, "--model", tiny_model_dir, "--queries", csv, "--no-progress",
               "--contact-sheet", sheet, "--sheet-rows", "4").output
    assert "Recall@1:" in text and "Recall@10: 100.00 per image, 100.00 over distinct products" in text
    with Image.open(sheet) as img:  # 4 query rows, query + top 5 columns
        assert img.width > 5 * img.height / 4 and img.height > 4 * 112
    # The numbers equal a direct brute-force computation through the same embedder.
    emb = embedders.load_embedder(tiny_model_dir)
    q = emb.embed_paths([p for p, _, _ in items if p.stem != "img0"], progress=False)
    g = emb.embed_paths([p for p, _, _ in items if p.stem == "img0"], progress=False)
    top1 = np.argmax(q @ g.T, axis=1)
    want = np.mean(top1 == np.repeat(np.arange(5), 2))
    assert metrics["recall@1"] == pytest.approx(want)


def test_bundle_for_web_demo(tiny_model_dir, catalogue, tmp_path):
    root, items = catalogue
    out = tmp_path / "cat.dpindex"
    run("build", "--model", tiny_model_dir, "--images", root, "--out", out, "--no-progress")
    assets = tmp_path / "assets"
    res = run("bundle", "--model", tiny_model_dir, "--index", out, "--target", "web", "--out", assets,
              "--sample", items[1][0], "--samples-from", root, "--max-samples", "2")
    assert res.exit_code == 0, res.output
    doc = json.loads((assets / "bundle.json").read_text())
    assert doc["models"][0]["format"] == "onnx" and len(doc["samples"]) == 3
    assert (assets / "catalogue.dpindex").is_file() and (assets / "manifest.json").is_file()
    # One catalogue thumbnail per product (its first image), named by position, never by id
    thumbs = doc["thumbnails"]
    assert thumbs["size"] == 96 and sorted(thumbs["products"]) == sorted({pid for _, pid, _ in items})
    from PIL import Image

    for rel in thumbs["products"].values():
        with Image.open(assets / rel) as im:
            assert im.format == "JPEG" and max(im.size) <= 96
    first = (assets / thumbs["products"]["p001"])
    with Image.open(first) as im, Image.open(root / "p001" / "img0.png") as src:  # the product's own photo
        small = src.convert("RGB").resize(im.size)
        assert np.abs(np.asarray(im, np.float32) - np.asarray(small, np.float32)).mean() < 25
    shutil.rmtree(assets)
