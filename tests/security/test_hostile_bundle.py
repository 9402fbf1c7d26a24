"""dp-search bundle and the manifest reader against hostile folders (docs/threat-model.md):
never delete what is not ours, never copy from outside the model folder or the data set,
never ship a model package that dp-export verify would flag; and writers exclude each other."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from support import VECTORS

from deepproduct.sdk.bundle import BundleError, write_bundle
from deepproduct.sdk.cli import main as dp_search
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import IndexFileError
from deepproduct.sdk.locking import folder_lock
from deepproduct.sdk.model_manifest import ManifestError, load_model_manifest, sha256_file, sha256_path

_spec = importlib.util.spec_from_file_location("make_bad_vectors", VECTORS / "make_bad_vectors.py")
_bad = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bad)
BAD = json.loads((VECTORS / "bad" / "expected.json").read_text(encoding="utf-8"))
SPACE = _bad.GOOD_MANIFEST["embedding_space_id"]


def _model(root: Path, artefacts: dict[str, str]) -> Path:
    """A schema-valid model folder: ``artefacts`` maps file -> format; hashes and ``files`` filled in."""
    d = root / "model"
    d.mkdir(exist_ok=True)
    m = copy.deepcopy(_bad.GOOD_MANIFEST)
    m["artefacts"], m["files"] = [], []
    layouts = {"onnx": "NCHW", "tflite": "NHWC", "coreml": "image"}
    for file, fmt in artefacts.items():
        p = d / file
        if fmt == "coreml" and not p.exists():
            (p / "Data").mkdir(parents=True)
            (p / "Data" / "weight.bin").write_bytes(bytes(range(64)))
            (p / "Manifest.json").write_text("{}")
        elif not p.exists():
            p.write_bytes(b"model bytes " + file.encode())
        m["artefacts"].append({"file": file, "format": fmt, "precision": "fp32", "layout": layouts[fmt],
                               "input_name": "image", "output_name": "embedding", "sha256": sha256_path(p),
                               "size_bytes": 1, "parity": []})
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            rel = p.relative_to(d).as_posix()
            m["files"].append({"path": rel, "sha256": sha256_file(p), "size_bytes": p.stat().st_size})
    (d / "manifest.json").write_text(json.dumps(m, indent=1))
    return d


def _index(root: Path) -> Path:
    rng = np.random.default_rng(0)
    return GalleryIndex.from_embeddings(rng.normal(size=(4, 16)).astype(np.float32), list("abcd"),
                                        embedding_space_id=SPACE).save(root / "g.dpindex")


def _photo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


def _bundle_cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(dp_search, ["bundle", *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


# 1. --out never deletes a folder that is not a bundle we made
def test_out_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    model, index = _model(tmp_path, {"model.onnx": "onnx"}), _index(tmp_path)
    victim = tmp_path / "v"
    (victim / "src").mkdir(parents=True)
    (victim / "notes.txt").write_text("x")
    code, out = _bundle_cli("--model", str(model), "--index", str(index), "--target", "web", "--out", str(victim))
    assert code == 3 and "not a bundle written by dp-search bundle" in out and str(victim) in out
    assert (victim / "notes.txt").read_text() == "x" and (victim / "src").is_dir()
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(BundleError, match="is a symlink"):
        write_bundle(model, index, link, "web")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "bundle.json").write_text('{"format": "something-else"}')
    with pytest.raises(BundleError, match="not a bundle"):
        write_bundle(model, index, fake, "web")


def test_out_replaces_our_own_bundle_and_cleans_only_our_leftovers(tmp_path):
    model, index = _model(tmp_path, {"model.onnx": "onnx"}), _index(tmp_path)
    out = tmp_path / "web"
    out.mkdir()  # empty: fine
    write_bundle(model, index, out, "web")
    (out / "stale.txt").write_text("old")
    with pytest.raises(BundleError, match="does not list"):  # a user's file in our bundle: refused, kept
        write_bundle(model, index, out, "web")
    (out / "stale.txt").unlink()
    partial = tmp_path / ".web.killed1"  # an interrupted run's half-written folder
    partial.mkdir()
    (partial / ".deepproduct-partial-bundle").touch()
    foreign = tmp_path / ".web.old"  # the old code rmtree'd this fixed name, whoever owned it
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    write_bundle(model, index, out, "web")
    assert not (out / "stale.txt").exists() and (out / "model.onnx").is_file()
    assert not partial.exists() and (foreign / "mine.txt").read_text() == "keep"
    # A user's backup of a bundle (a complete bundle under a name swap_folder never gives): kept
    backup = tmp_path / ".web.backup"
    shutil.copytree(out, backup)
    write_bundle(model, index, out, "web")
    assert (backup / "bundle.json").is_file() and (backup / "model.onnx").is_file()
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # readable by a web server (umask permitting)


# 3. artefact paths confined to the model folder
@pytest.mark.parametrize("file", ["../../evil.onnx", "/etc/hostname", "sub/../../x.onnx", "C:/x.onnx"])
def test_artefact_path_escape_is_refused(tmp_path, file):
    model = _model(tmp_path, {"model.onnx": "onnx"})
    m = json.loads((model / "manifest.json").read_text())
    m["artefacts"][0]["file"] = file
    (model / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ManifestError, match=r"artefacts\[0\]\.file: .*not a plain relative path"):
        load_model_manifest(model)
    code, out = _bundle_cli("--model", str(model), "--index", str(_index(tmp_path)), "--out", str(tmp_path / "b"))
    assert code == 1 and "not a plain relative path" in out and "SameFileError" not in out
    assert not (tmp_path / "b").exists()


def test_artefact_symlink_leaving_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"model bytes model.onnx")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.onnx").symlink_to(outside)
    model = _model(tmp_path, {"model.onnx": "onnx"})
    manifest = load_model_manifest(model)
    with pytest.raises(ManifestError, match="leads outside"):
        manifest.artefact_path(manifest.artefacts[0])
    with pytest.raises(BundleError, match="leads outside"):
        write_bundle(model, _index(tmp_path), tmp_path / "b", "web")


# 4. samples: images inside the data root only
def test_samples_from_a_manifest_stay_inside_the_data_set(tmp_path):
    model, index = _model(tmp_path, {"model.onnx": "onnx"}), _index(tmp_path)
    data = tmp_path / "data"
    _photo(data / "images" / "q.png")
    _photo(tmp_path / "secret.png")
    for row in ("../secret.png", "../../../../etc/passwd", "images/../../secret.png"):
        (data / "manifest.csv").write_text(f"path,product_id,domain,split,tags\nimages/q.png,a,user,test,\n{row},b,user,test,\n")
        code, out = _bundle_cli("--model", str(model), "--index", str(index), "--out", str(tmp_path / "b"),
                                "--samples-from", str(data / "manifest.csv"))
        assert code == 1 and not (tmp_path / "b").exists(), (row, out)
        assert "outside the data root" in out and row.split("/")[-1] in out, out
    (data / "manifest.csv").write_text("path,product_id,domain,split,tags\nimages/q.png,a,user,test,\n")
    code, out = _bundle_cli("--model", str(model), "--index", str(index), "--out", str(tmp_path / "b"),
                            "--samples-from", str(data / "manifest.csv"))
    assert code == 0 and (tmp_path / "b" / "samples" / "q.png").is_file(), out


def test_sample_symlinks_and_non_images_are_refused(tmp_path):
    model, index = _model(tmp_path, {"model.onnx": "onnx"}), _index(tmp_path)
    link = tmp_path / "q.png"
    link.symlink_to(_photo(tmp_path / "real" / "q.png"))
    text = tmp_path / "hostname.png"
    text.write_text("not an image\n")
    for sample, problem in ((link, "is a symlink"), (text, "not a readable image"),
                            (tmp_path / "model" / "manifest.json", "not an image file")):
        code, out = _bundle_cli("--model", str(model), "--index", str(index), "--out", str(tmp_path / "b"),
                                "--sample", str(sample))
        assert code == 1 and problem in out and not (tmp_path / "b").exists(), out


# 5. iOS: .mlpackage folders verified like dp-export verify
def test_ios_bundle_checks_every_file_of_the_mlpackage(tmp_path):
    model = _model(tmp_path, {"model.mlpackage": "coreml"})
    index = _index(tmp_path)
    assert (write_bundle(model, index, tmp_path / "ok", "ios") / "model.mlpackage" / "Data" / "weight.bin").is_file()
    weight = model / "model.mlpackage" / "Data" / "weight.bin"
    data = bytearray(weight.read_bytes())
    data[10] ^= 1
    weight.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weight.bin: SHA-256 differs"):
        write_bundle(model, index, tmp_path / "b1", "ios")
    data[10] ^= 1
    weight.write_bytes(bytes(data))
    (model / "model.mlpackage" / "Data" / "extra").symlink_to("/etc/hostname")
    with pytest.raises(BundleError, match="symlink inside a model package"):
        write_bundle(model, index, tmp_path / "b2", "ios")
    os.unlink(model / "model.mlpackage" / "Data" / "extra")
    (model / "model.mlpackage" / "Data" / "added.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match="not listed"):
        write_bundle(model, index, tmp_path / "b3", "ios")
    assert not any((tmp_path / f"b{i}").exists() for i in (1, 2, 3))


def test_directory_hash_is_the_exporters():
    """One directory-hash definition: the exporter's manifest and the SDK's check agree."""
    export_manifest = pytest.importorskip("deepproduct.export.manifest")
    folder = VECTORS / "images"
    assert export_manifest.sha256_path(folder) == sha256_path(folder)


# strict manifests: the shared corpus
@pytest.mark.parametrize("name", sorted(BAD["manifest"]))
def test_manifest_corpus(name):
    expected = BAD["manifest"][name]
    path = VECTORS / "bad" / name
    if expected.get("valid"):
        load_model_manifest(path)
        return
    with pytest.raises(ManifestError) as info:
        load_model_manifest(path)
    assert expected["mentions"] in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_manifest_fifo_and_directory_fail_fast(tmp_path):
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="not a regular file"):
        load_model_manifest(tmp_path)


# writers: exclusive, and they clean their own leftovers
def test_second_writer_fails_clearly_and_the_first_result_survives(tmp_path):
    target = _index(tmp_path)
    before = target.read_bytes()
    with folder_lock(tmp_path, target, ValueError):
        with pytest.raises(IndexFileError, match="another DeepProduct writer is writing in"):
            GalleryIndex.from_embeddings(np.ones((1, 16), np.float32), ["z"]).save(target)
        with pytest.raises(BundleError, match="another DeepProduct writer"):
            write_bundle(_model(tmp_path, {"model.onnx": "onnx"}), target, tmp_path / "web", "web")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dpindex", "model"]


def test_index_writer_removes_its_stale_temp_files_only(tmp_path):
    target = _index(tmp_path)
    stale = tmp_path / ".g.dpindex.k1ll3d.tmp"
    stale.write_bytes(b"x" * 100)
    other = tmp_path / ".other.dpindex.abc.tmp"
    other.write_bytes(b"y")
    GalleryIndex.load(target).save(target)
    assert not stale.exists() and other.exists()
    link = tmp_path / "link.dpindex"
    link.symlink_to(target)
    with pytest.raises(IndexFileError, match="is a symlink"):
        GalleryIndex.load(target).save(link)
    assert link.is_symlink()
    shutil.rmtree(tmp_path / "model", ignore_errors=True)
