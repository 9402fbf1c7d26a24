"""The committed cross-platform vectors hold for the Python SDK and are reproducible."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from support import VECTORS

from deepproduct.sdk import exact_search
from deepproduct.sdk import index_format as fmt
from deepproduct.sdk.gallery_index import GalleryIndex, normalize_rows
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image, resize_and_crop

INDEX_DOC = json.loads((VECTORS / "index" / "expected.json").read_text(encoding="utf-8"))
IMAGE_DOC = json.loads((VECTORS / "images" / "expected.json").read_text(encoding="utf-8"))


def _f32(path: Path, shape) -> np.ndarray:
    return np.fromfile(path, dtype="<f4").reshape(shape)


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_index_vectors(storage):
    entry = INDEX_DOC["indexes"][storage]
    index = GalleryIndex.load(VECTORS / "index" / entry["file"], expected_space_id=INDEX_DOC["embedding_space_id"])
    queries = _f32(VECTORS / "index" / INDEX_DOC["queries_file"], INDEX_DOC["queries_shape"])
    np.testing.assert_array_equal(queries, np.asarray(INDEX_DOC["queries"], np.float32))
    np.testing.assert_array_equal(normalize_rows(queries), np.asarray(INDEX_DOC["normalized_queries"], np.float32))
    if storage == "int8":
        np.testing.assert_array_equal(index.prepare_queries(queries),
                                      np.asarray(entry["int8_weights"], np.float32))
    for case in entry["cases"]:
        hits = index.search(queries, k=case["k"], filter=case["filter"])
        for got, want in zip(hits, case["results"], strict=True):
            assert [h.position for h in got] == want["positions"], case
            assert [h.product_id for h in got] == want["product_ids"]
            np.testing.assert_allclose([h.score for h in got], want["scores"], atol=INDEX_DOC["score_atol"])
    assert "p-café-23" in index.product_ids
    for case in entry["product_cases"]:
        for backend in exact_search.available_backends():
            hits = index.search(queries, k=case["k"], filter=case["filter"], unique_products=True, backend=backend)
            for got, want in zip(hits, case["results"], strict=True):
                assert [h.position for h in got] == want["positions"], (backend, case)
                assert [h.product_id for h in got] == want["product_ids"]
                np.testing.assert_allclose([h.score for h in got], want["scores"], atol=INDEX_DOC["score_atol"])


def test_empty_index_vector():
    index = GalleryIndex.load(VECTORS / "index" / "empty.dpindex")
    assert len(index) == 0 and index.search(np.ones(16, np.float32), k=3) == []


@pytest.mark.parametrize(("name", "error"), [
    ("truncated.dpindex", fmt.TruncatedIndexError),
    ("version2.dpindex", fmt.UnsupportedVersionError),
    ("bad_checksum.dpindex", fmt.ChecksumError),
    ("bad_header_crc.dpindex", fmt.ChecksumError),
    ("not_an_index.dpindex", fmt.IndexFileError),
])
def test_bad_vectors(name, error):
    with pytest.raises(error, match=name):
        GalleryIndex.load(VECTORS / "bad" / name)


def test_space_and_dimension_errors_on_vectors():
    path = VECTORS / "index" / "float32.dpindex"
    with pytest.raises(fmt.EmbeddingSpaceMismatchError):
        GalleryIndex.load(path, expected_space_id="some-other-model")
    with pytest.raises(fmt.QueryDimensionError):
        GalleryIndex.load(path).search(np.ones(15, np.float32))


@pytest.mark.parametrize("entry", IMAGE_DOC["images"], ids=lambda e: e["file"])
def test_image_vectors(entry):
    spec = PreprocessingSpec.from_dict(IMAGE_DOC["spec"])
    folder = VECTORS / "images"
    expected = _f32(folder / entry["expected_file"], entry["expected_shape"])
    decoded = _f32(folder / entry["decoded_file"], entry["decoded_shape"])
    from_decoded = resize_and_crop(decoded.astype(np.float64), spec).astype(np.float32)
    np.testing.assert_allclose(from_decoded.transpose(2, 0, 1)[None], expected, atol=IMAGE_DOC["tensor_atol"], rtol=0)
    full = preprocess_image(folder / entry["file"], spec, "NCHW")
    np.testing.assert_allclose(full, expected, atol=entry["full_pipeline_atol"], rtol=0)


def test_regenerating_reproduces_the_committed_vectors(tmp_path):
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out", str(tmp_path)])
    for rel in ("index/float32.dpindex", "index/int8.dpindex", "index/empty.dpindex", "index/queries.f32",
                "index/expected.json", "bad/version2.dpindex", "bad/truncated.dpindex"):
        assert (tmp_path / rel).read_bytes() == (VECTORS / rel).read_bytes(), rel
    fresh = json.loads((tmp_path / "images" / "expected.json").read_text(encoding="utf-8"))
    assert fresh == IMAGE_DOC
    for entry in IMAGE_DOC["images"]:
        if entry["file"].endswith(".png"):
            np.testing.assert_array_equal(np.fromfile(tmp_path / "images" / entry["expected_file"], "<f4"),
                                          np.fromfile(VECTORS / "images" / entry["expected_file"], "<f4"))


def test_vectors_stay_small():
    total = sum(p.stat().st_size for p in VECTORS.rglob("*") if p.is_file())
    assert total < 1_000_000
