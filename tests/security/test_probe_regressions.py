"""One regression test per defect class the careless/hostile-user probe found (issue 19).

The CLI matrix (test_cli_matrix.py) covers the output policy for every writer generically; the
tests here pin each reported instance by name: data loss, hangs, memory, crashes, wrong results,
reading outside the target, tracebacks and terminal injection.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from support.tiny_model import write_catalogue

from deepproduct.export.cli import main as dp_export
from deepproduct.sdk.cli import main as dp_search
from deepproduct.sdk.cli_boundary import terminal_safe
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.model_manifest import ManifestError, sha256_file
from deepproduct.sdk.output_policy import MARKER_NAME, write_marker
from deepproduct.sdk.preprocessing import ImageDecodeError, PreprocessingSpec, preprocess_image
from deepproduct.training.config import ConfigError, load_config
from deepproduct.training.data_cli import main as dp_data
from deepproduct.training.train_cli import main as dp_train


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(result, prog: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), result.stderr
    return lines[0]


@pytest.fixture()
def catalogue(tmp_path) -> tuple[Path, list]:
    root = tmp_path / "catalogue"
    return root, write_catalogue(root, products=4, per_product=2)


@pytest.fixture()
def index_file(tiny_model_dir, catalogue, tmp_path) -> Path:
    out = tmp_path / "cat.dpindex"
    r = CliRunner().invoke(dp_search, ["build", "--model", str(tiny_model_dir), "--images", str(catalogue[0]),
                                       "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    return out


# -- data loss ---------------------------------------------------------------------------------------
def test_export_into_the_checkpoints_own_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "last.safetensors").write_bytes(b"weights")
    (folder / "notes.md").write_text("my notes")
    before = _tree_hashes(folder)
    r = CliRunner().invoke(dp_export, [str(folder / "last.safetensors"), "--out", str(folder), "--overwrite"])
    assert "contains this command's input" in _one_line_error(r, "dp-export") and r.exit_code == 3
    assert _tree_hashes(folder) == before


def test_dp_train_refuses_an_existing_run_without_resume_or_overwrite(tmp_path, tiny_manifest):
    run = tmp_path / "runs" / "mine"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"a week of training")
    write_marker(run, "dp-train", "run-folder")
    before = _tree_hashes(run)
    args = [f"out_dir={tmp_path / 'runs'}", "name=mine", f"data.manifest={tiny_manifest}"]
    r = CliRunner().invoke(dp_train, args)
    assert "--overwrite" in _one_line_error(r, "dp-train") and r.exit_code == 3
    (run / MARKER_NAME).unlink()  # not marked: refused even with --overwrite
    r = CliRunner().invoke(dp_train, ["--overwrite", *args])
    assert "not written by DeepProduct" in _one_line_error(r, "dp-train")
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == b"a week of training"
    assert {k: v for k, v in _tree_hashes(run).items() if MARKER_NAME not in k} == \
        {k: v for k, v in before.items() if MARKER_NAME not in k}


def test_writers_never_overwrite_their_own_input(tmp_path, tiny_model_dir, catalogue, index_file):
    root, items = catalogue
    csv = tmp_path / "pairs.csv"
    csv.write_text("street,shop,product_id\na.jpg,b.jpg,p1\n")
    r = CliRunner().invoke(dp_data, ["pairs", str(csv), "--images", str(root), "--out", str(csv)])
    assert "also one of this command's inputs" in _one_line_error(r, "dp-data")
    assert csv.read_text() == "street,shop,product_id\na.jpg,b.jpg,p1\n"
    photo = items[0][0]
    before = photo.read_bytes()
    r = CliRunner().invoke(dp_search, ["query", "--index", str(index_file), "--model", str(tiny_model_dir),
                                       str(photo), "--contact-sheet", str(photo)])
    _one_line_error(r, "dp-search")
    assert photo.read_bytes() == before
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,product_id,domain,split,tags\n")
    r = CliRunner().invoke(dp_search, ["build", "--model", str(tiny_model_dir), "--images", str(manifest),
                                       "--out", str(manifest)])
    _one_line_error(r, "dp-search")
    assert manifest.read_text() == "path,product_id,domain,split,tags\n"


def test_export_failing_on_a_missing_checkpoint_touches_no_sibling(tmp_path):
    out = tmp_path / "exp"
    marked = tmp_path / ".exp.tmp-abcd"
    marked.mkdir()
    write_marker(marked, "dp-export", "export-folder")
    (tmp_path / ".exp.old-users").mkdir()
    (tmp_path / ".exp.old-users" / "keep.txt").write_text("keep")
    r = CliRunner().invoke(dp_export, [str(tmp_path / "missing.safetensors"), "--out", str(out)])
    assert "checkpoint not found" in _one_line_error(r, "dp-export")
    assert marked.is_dir() and (tmp_path / ".exp.old-users" / "keep.txt").read_text() == "keep"


# -- hangs -------------------------------------------------------------------------------------------
def test_a_fifo_as_a_model_artefact_is_refused_not_hashed(tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="not a regular file"):
        sha256_file(fifo)  # a blocking read would hang this test forever


def test_preview_with_a_fifo_in_the_csv_finishes(tmp_path):
    root = tmp_path / "imgs"
    write_catalogue(root, products=3, per_product=2)
    csv = tmp_path / "m.csv"
    assert CliRunner().invoke(dp_data, ["imagefolder", str(root), "--out", str(csv),
                                        "--test-fraction", "0.5"]).exit_code == 0
    victim = next(root.rglob("*.png"))
    victim.unlink()
    os.mkfifo(victim)
    r = CliRunner().invoke(dp_data, ["preview", str(csv), "--out", str(tmp_path / "p.png"), "--split", "train"])
    r2 = CliRunner().invoke(dp_data, ["preview", str(csv), "--out", str(tmp_path / "p2.png"), "--split", "test"])
    assert r.exit_code == 0 and r2.exit_code == 0, r.output + r2.output
    assert "unreadable image(s) shown grey" in r.output + r2.output


# -- memory ------------------------------------------------------------------------------------------
def test_a_one_pixel_high_million_pixel_wide_png_is_cheap(tmp_path):
    path = tmp_path / "strip.png"
    Image.new("RGB", (1_000_000, 1), (10, 200, 30)).save(path)
    assert path.stat().st_size < 10_000
    tracemalloc.start()
    try:
        x = preprocess_image(path, PreprocessingSpec.for_input_size(64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (1, 3, 64, 64)
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # was 3.6 GiB: the row pass over the full width


def test_yaml_alias_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
                    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nmodel: {options: {bomb: [*c,*c,*c,*c,*c,*c]}}\n')
    with pytest.raises(ConfigError, match="aliases"):
        load_config(bomb)


def test_preview_sheet_is_capped(tmp_path):
    r = CliRunner().invoke(dp_data, ["preview", str(tmp_path / "x.csv"), "--out", str(tmp_path / "p.png"),
                                     "--products", "100000"])
    assert r.exit_code == 2 and len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


# -- wrong results, disagreeing cores ------------------------------------------------------------------
def _rewrite_vectors(path: Path, scale: float) -> None:
    """Scale the float32 rows and fix both CRCs: a well-formed file with non-unit rows."""
    from deepproduct.sdk.index_format import HEADER_SIZE, TRAILER_SIZE, crc32_update, read_index_header

    header = read_index_header(path)
    raw = bytearray(path.read_bytes())
    s = header.sections["vectors"]
    vec = np.frombuffer(bytes(raw[s.offset:s.offset + s.length]), "<f4") * scale
    raw[s.offset:s.offset + s.length] = vec.astype("<f4").tobytes()
    struct.pack_into("<I", raw, len(raw) - TRAILER_SIZE, crc32_update(0, bytes(raw[:-TRAILER_SIZE])))
    assert HEADER_SIZE > 0
    path.write_bytes(bytes(raw))


def test_info_refuses_non_unit_rows_and_json_never_prints_infinity(index_file, tiny_model_dir, catalogue):
    _rewrite_vectors(index_file, 1e30)
    r = CliRunner().invoke(dp_search, ["info", str(index_file)])
    assert "not unit length" in _one_line_error(r, "dp-search")
    r = CliRunner().invoke(dp_search, ["query", "--index", str(index_file), "--model", str(tiny_model_dir),
                                       str(catalogue[1][0][0]), "--json"])
    assert "Infinity" not in r.output and "not unit length" in _one_line_error(r, "dp-search")


def test_evaluate_with_no_matching_product_is_an_error_not_nan(index_file, tiny_model_dir, tmp_path):
    root = tmp_path / "other"
    write_catalogue(root, products=2, per_product=2, seed=5)
    for p in list(root.iterdir()):
        p.rename(root / f"zz-{p.name}")
    csv = tmp_path / "q.csv"
    assert CliRunner().invoke(dp_data, ["imagefolder", str(root), "--out", str(csv), "--test-fraction",
                                        "0.5"]).exit_code == 0
    r = CliRunner().invoke(dp_search, ["evaluate", "--index", str(index_file), "--model", str(tiny_model_dir),
                                       "--queries", str(csv), "--domain", "shop", "--json", "--no-progress"])
    assert "NaN" not in r.output and "undefined" in _one_line_error(r, "dp-search")


def test_a_float_tiff_with_nan_pixels_is_a_bad_image_not_a_bad_model(tmp_path, tiny_model_dir, catalogue):
    root, _ = catalogue
    Image.fromarray(np.full((40, 48), np.nan, np.float32), mode="F").save(root / "p000" / "nan.tif")
    with pytest.raises(ImageDecodeError, match="NaN"):
        preprocess_image(root / "p000" / "nan.tif")
    r = CliRunner().invoke(dp_search, ["build", "--model", str(tiny_model_dir), "--images", str(root), "--out",
                                       str(tmp_path / "x.dpindex"), "--skip-bad", "--no-progress"])
    assert r.exit_code == 0 and "nan.tif" in r.stderr and "model.onnx" not in r.stderr, r.output


def test_onnx_external_data_is_refused(tmp_path, tiny_model_dir):
    import onnx

    from deepproduct.sdk.embedders import EmbedderError, load_embedder

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    model = onnx.load(str(folder / "model.onnx"))
    onnx.save_model(model, str(folder / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    manifest = json.loads((folder / "manifest.json").read_text())
    new_hash = sha256_file(folder / "model.onnx")  # an attacker who re-hashes the graph but not the weights
    for a in manifest["artefacts"]:
        a["sha256"] = new_hash
    for f in manifest.get("files", []):
        if f["path"] == "model.onnx":
            f["sha256"] = new_hash
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises((EmbedderError, ManifestError), match="external data|cannot load"):
        load_embedder(folder)


@pytest.mark.parametrize("override, key", [("optim.epochs=true", "optim.epochs"),
                                           ("model.pretrained=1", "model.pretrained"),
                                           ("data.image_size=1.5", "data.image_size")])
def test_config_overrides_of_the_wrong_type_are_refused(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


# -- reading outside the target --------------------------------------------------------------------
def test_contact_sheet_reads_gallery_images_only_inside_image_root(tmp_path):
    from deepproduct.sdk.contact_sheet import gallery_image_path

    root = tmp_path / "gallery"
    (root / "p1").mkdir(parents=True)
    assert gallery_image_path(root, "p1/a.png") == (root / "p1" / "a.png").resolve()
    for hostile in ("/etc/passwd", "../../secret.png", "p1/../../x.png", "", None, 5):
        assert gallery_image_path(root, hostile) is None


# -- tracebacks --------------------------------------------------------------------------------------
def test_csv_field_over_the_limit_is_one_line(tmp_path):
    csv = tmp_path / "big.csv"
    csv.write_text("path,product_id,domain,split,tags\n" + "a" * 200_000 + ",p,shop,train,\n")
    r = CliRunner().invoke(dp_data, ["stats", str(csv)])
    assert "line 2" in _one_line_error(r, "dp-data") and str(csv) in r.stderr


def test_deeply_nested_products_json_is_one_line(tmp_path, tiny_model_dir, catalogue):
    root, _ = catalogue
    (root / "products.json").write_text("[" * 100_000 + "]" * 100_000)
    r = CliRunner().invoke(dp_search, ["build", "--model", str(tiny_model_dir), "--images", str(root), "--out",
                                       str(tmp_path / "x.dpindex")])
    assert "products.json" in _one_line_error(r, "dp-search")


def test_malformed_yaml_is_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("optim: {lr: [1, 2\n")
    r = CliRunner().invoke(dp_train, ["--config", str(cfg)])
    assert "not valid YAML" in _one_line_error(r, "dp-train") and str(cfg) in r.stderr


def test_resume_with_another_architecture_is_one_line(tmp_path, tiny_manifest):
    from support.tiny_export import write_tiny_export

    ck = write_tiny_export(tmp_path / "ck", embedding_dim=16) / "checkpoint.safetensors"
    r = CliRunner().invoke(dp_train, ["--resume", str(ck), f"out_dir={tmp_path}", "name=r",
                                      f"data.manifest={tiny_manifest}", "model.backbone=tiny_cnn",
                                      "model.embedding_dim=32", "model.pretrained=false", "multitask.variant=none",
                                      "--quiet"])
    assert "does not fit the configured model" in _one_line_error(r, "dp-train")


def test_verify_on_a_folder_without_a_parity_set_is_one_line(tmp_path, tiny_model_dir):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    r = CliRunner().invoke(dp_export, ["verify", str(folder), "--no-clients"])
    assert "no saved parity set" in _one_line_error(r, "dp-export")


def test_unexpected_errors_are_one_line_with_a_traceback_file(monkeypatch, tmp_path, capsys):
    from deepproduct.sdk import cli as sdk_cli

    monkeypatch.setattr(sdk_cli, "parse_filters", lambda specs: (_ for _ in ()).throw(TypeError("a bug")))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    r = CliRunner().invoke(dp_search, ["query", "--index", str(tmp_path), "--model", str(tmp_path), str(tmp_path)])
    assert r.exit_code == 2  # click: --index must be a file; a usage error, still one line
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


def test_null_index_object_in_metadata_reads_as_empty(index_file):
    from deepproduct.sdk.index_format import parse_metadata

    doc = parse_metadata(b'{"index": null, "items": [{}]}', 1)
    assert doc["index"] == {}
    assert isinstance(GalleryIndex.load(index_file).info, dict)


# -- terminal injection --------------------------------------------------------------------------------
def test_control_sequences_in_ids_are_shown_escaped():
    hostile = "p1\x1b]8;;http://evil\x07click\x1b]8;;\x07\x1b[2J"
    shown = terminal_safe(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\\x1b" in shown


# -- second probe (issue 19 rerun) --------------------------------------------------------------------
def test_resume_never_trains_into_a_users_folder(tmp_path, tiny_manifest):
    from support.tiny_export import write_tiny_export

    ck = write_tiny_export(tmp_path / "ck", embedding_dim=16) / "checkpoint.safetensors"
    user = tmp_path / "runs" / "userrun" / "checkpoints"
    user.mkdir(parents=True)
    (user / "last.safetensors").write_text("precious")
    r = CliRunner().invoke(dp_train, ["--resume", str(ck), f"out_dir={tmp_path / 'runs'}", "name=userrun",
                                      f"data.manifest={tiny_manifest}", "--quiet"])
    assert "did not write" in _one_line_error(r, "dp-train") and r.exit_code == 3
    assert (user / "last.safetensors").read_text() == "precious"


def test_an_export_never_replaces_another_kind_of_deepproduct_folder(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.safetensors").write_bytes(b"weights")
    write_marker(run, "dp-train", "run-folder")
    ck = tmp_path / "other.safetensors"
    ck.write_bytes(b"x")
    r = CliRunner().invoke(dp_export, [str(ck), "--out", str(run), "--overwrite"])
    assert "not a export-folder" in _one_line_error(r, "dp-export") and r.exit_code == 3
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == b"weights"


def test_json_out_never_replaces_a_users_file(tmp_path):
    from deepproduct.benchmarks.cli import main as dp_bench

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    (tmp_path / "export").mkdir()
    data = tmp_path / "m.csv"
    data.write_text("path,product_id,domain,split,tags\n")
    r = CliRunner().invoke(dp_bench, ["int8-budget", str(tmp_path / "export"), "--data", str(data),
                                      "--json-out", str(notes)])
    assert "not a JSON file written by DeepProduct" in _one_line_error(r, "dp-bench") and notes.read_text() == "mine"


def test_fifo_and_device_text_inputs_are_refused_at_once(tmp_path):
    from deepproduct.sdk.fileio import read_text_input

    fifo = tmp_path / "lock.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_text_input(fifo, "transfer source lock")  # a blocking open would hang here
    with pytest.raises(ValueError, match="not a regular file"):
        read_text_input("/dev/zero", "benchmark log")  # reading it would never end


def test_config_values_have_upper_bounds_and_yaml_keys_are_unique(tmp_path):
    for override, key in (("data.image_size=100000", "data.image_size"), ("model.embedding_dim=100000000",
                                                                          "model.embedding_dim"),
                          ("threads=100000", "threads"), ("name=../../escape", "name")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, [override])
    dup = tmp_path / "dup.yaml"
    dup.write_text("optim: {lr: 0.1}\noptim: {lr: 0.2}\n")
    with pytest.raises(ConfigError, match="duplicate key"):
        load_config(dup)


def test_bidi_controls_are_escaped():
    assert "\u202e" not in terminal_safe("abc\u202edcba") and "\\x202e" in terminal_safe("abc\u202edcba")


def test_alpha_images_decoded_in_float_are_capped(tmp_path):
    path = tmp_path / "big-alpha.png"
    Image.new("RGBA", (3000, 3000), (0, 0, 0, 0)).save(path)  # 9 MP: float64 decode would take ~1 GB
    with pytest.raises(ImageDecodeError, match="capped"):
        preprocess_image(path)


def test_contact_sheets_trust_an_index_image_root_only_near_home(tmp_path, monkeypatch):
    from deepproduct.sdk.cli import trusted_image_root

    monkeypatch.chdir(tmp_path)
    index = tmp_path / "search" / "cat.dpindex"
    assert trusted_image_root({"image_root": str(tmp_path / "data")}, index) == (tmp_path / "data").resolve()
    assert trusted_image_root({"image_root": "data"}, index) == (tmp_path / "data").resolve()
    assert trusted_image_root({"image_root": "/"}, index) is None  # a hostile index's root: ignored
    assert trusted_image_root({"image_root": "data/../.."}, index) is None


def test_profile_of_a_file_that_is_not_an_image_model_is_one_line(tmp_path):
    """`dp-bench profile` on a non-ONNX file, an empty file, or an ONNX graph that does not take an
    image batch: one line naming the file, exit 1 (it was an exit-70 'bug' with a second ORT line)."""
    import onnx
    from onnx import TensorProto, helper

    from deepproduct.benchmarks.cli import main as dp_bench

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "vector.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    (tmp_path / "empty.onnx").write_bytes(b"")
    for name, problem in (("text.onnx", "cannot load it as a model"), ("empty.onnx", "cannot load it as a model"),
                          ("vector.onnx", "cannot run it on a (1, 3, 224, 224) float32 image batch")):
        result = CliRunner().invoke(dp_bench, ["profile", str(tmp_path / name), "--runs", "1", "--warmup", "0",
                                               "--out", str(tmp_path / "o.jsonl")])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert name in lines[0] and problem in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_dp_export_refuses_a_users_folder_before_torch_loads(tmp_path):
    """The refusal comes at once (it cost a ~5 s torch import before the output policy ran)."""
    import subprocess
    import sys

    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    code = ("import sys\nfrom deepproduct.export.cli import main\n"
            f"sys.argv = ['dp-export', {str(tmp_path / 'ck.safetensors')!r}, '--out', {str(user)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "exit 3 False", result.stdout + result.stderr
    assert "refusing to replace it" in result.stderr and (user / "notes.txt").read_text() == "keep"
