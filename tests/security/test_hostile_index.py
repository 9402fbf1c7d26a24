"""Hostile ``.dpindex`` files: the shared corpus (tests/vectors/bad/expected.json) and the
reader's file-handling promises (docs/threat-model.md): one open, no hang, no raw OSError."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from support import VECTORS

import deepproduct.sdk.index_format as index_format
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import IndexFileError, read_index_header

BAD = json.loads((VECTORS / "bad" / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(BAD["index"]))
def test_shared_corpus(name):
    expected = BAD["index"][name]
    path = VECTORS / "bad" / name
    if expected.get("valid"):
        index = GalleryIndex.load(path)
        assert (len(index), index.dim) == (expected["count"], expected["dim"])
        ref = GalleryIndex.load(VECTORS / expected["same_results_as"])
        q = np.asarray(ref.vectors[:3], np.float32)
        assert index.search_arrays(q, k=5)[1].tolist() == ref.search_arrays(q, k=5)[1].tolist()
        return
    with pytest.raises(IndexFileError) as info:
        index = GalleryIndex.load(path)
        index.search(np.ones(index.dim, np.float32), k=100)  # a reader that loads must also search
    assert type(info.value).__name__ == expected["kind"]
    assert info.value.problem.startswith(expected["problem"]), info.value.problem
    assert str(info.value).startswith(f"{path}: ")


def test_regenerating_the_corpus_reproduces_it(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_bad_vectors", VECTORS / "make_bad_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "index").mkdir()
    for name in ("float32.dpindex", "int8.dpindex"):
        (tmp_path / "index" / name).write_bytes((VECTORS / "index" / name).read_bytes())
    assert module.write_bad_vectors(tmp_path) == BAD
    for p in (tmp_path / "bad").rglob("*"):
        if p.is_file():
            assert p.read_bytes() == (VECTORS / "bad" / p.relative_to(tmp_path / "bad")).read_bytes(), p


def test_load_opens_the_file_once_and_maps_that_descriptor(monkeypatch, tmp_path):
    """Validation and the memory map share one descriptor: a writer replacing the file in between
    cannot give ids from one version and vectors from another."""
    path = tmp_path / "g.dpindex"
    path.write_bytes((VECTORS / "index" / "float32.dpindex").read_bytes())
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: (opened.append(str(p)), real_os_open(p, *a, **k))[1])
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: (opened.append(str(p)), real_open(p, *a, **k))[1])
    class CheckedMemmap(np.memmap):
        def __new__(cls, target, *a, **k):
            assert not isinstance(target, (str, os.PathLike)), "mapped by name, not by the validated descriptor"
            return super().__new__(cls, target, *a, **k)

    monkeypatch.setattr(index_format.np, "memmap", CheckedMemmap)
    index = GalleryIndex.load(path)
    assert opened.count(str(path)) == 1 and index.is_memory_mapped
    # Replace the file by another version after the load: the loaded index still reads the first.
    other = GalleryIndex.from_embeddings(np.eye(40, 16, 1, dtype=np.float32) + 0.01, [f"x{i}" for i in range(40)],
                                         embedding_space_id="other")
    other.save(path)
    ref = GalleryIndex.load(VECTORS / "index" / "float32.dpindex")
    np.testing.assert_array_equal(np.asarray(index.vectors), np.asarray(ref.vectors))
    assert index.product_ids == ref.product_ids


def test_fifo_directory_and_symlink_loop_fail_fast(tmp_path):
    fifo = tmp_path / "fifo.dpindex"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.dpindex"
    loop.symlink_to(loop)
    for path, problem in ((fifo, "is not a regular file, not an index file"),
                          (tmp_path, "is a directory, not an index file"),
                          (loop, "cannot open the index file")):
        with pytest.raises(IndexFileError, match="^" + str(path) + ": " + problem):
            GalleryIndex.load(path)
        with pytest.raises(IndexFileError):
            read_index_header(path)


def test_info_on_hostile_files_prints_one_line_no_traceback(tmp_path):
    fifo = tmp_path / "fifo.dpindex"
    os.mkfifo(fifo)
    for path in (VECTORS / "bad" / "non_utf8_id.dpindex", VECTORS / "bad" / "zero_alignment.dpindex", fifo):
        r = subprocess.run([sys.executable, "-m", "deepproduct.sdk.cli", "info", str(path)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 1, r
        assert "Traceback" not in r.stderr and r.stderr.strip().startswith("dp-search: error: "), r.stderr
        assert str(path) in r.stderr


def test_verify_false_still_refuses_bad_ids_and_scales():
    for name in ("non_utf8_id.dpindex", "huge_scale.dpindex"):
        with pytest.raises(IndexFileError):
            GalleryIndex.load(VECTORS / "bad" / name, verify=False)


def test_fifo_or_directory_as_an_image_fails_fast(tmp_path):
    from deepproduct.sdk.preprocessing import ImageDecodeError, decode_image

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(ImageDecodeError, match="not a regular file"):
            decode_image(path)
