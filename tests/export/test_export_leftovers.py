"""A killed ``dp-export`` leaves ``.OUT.tmp-*`` beside ``--out`` and a scratch folder in the temporary
directory; the next run for the same target removes them (and only them) under the folder lock,
puts back a previous export an interrupted swap left aside, and writes folders a web server can read.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepproduct.export.cli import main as dp_export
from deepproduct.export.workspace import clean_leftovers, export_workspace, scratch_prefix
from deepproduct.sdk.locking import folder_lock, ordinary_dir_mode
from deepproduct.sdk.output_policy import write_marker


@pytest.fixture
def system_tmp(tmp_path, monkeypatch) -> Path:
    """A private system temporary directory, so scratch folders of other runs are never seen."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _leftovers(out: Path, system_tmp: Path) -> list[str]:
    return sorted([p.name for p in out.parent.glob(f".{out.name}.*")]
                  + [p.name for p in system_tmp.glob("dp-export-scratch-*")])


def test_next_run_removes_its_own_leftovers_only(tmp_path, system_tmp):
    out = (tmp_path / "exp").resolve()
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    for name in (".exp.tmp-ab12", ".exp.old-cd34", ".other.tmp-ef56", ".exp.old-users-own"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.onnx").write_bytes(b"x" * 100)
        if name != ".exp.old-users-own":
            write_marker(tmp_path / name, "dp-export", "export-folder")
    (system_tmp / f"{scratch_prefix(out)}zz").mkdir()
    foreign = system_tmp / f"{scratch_prefix(tmp_path / 'other')}yy"
    foreign.mkdir()
    removed = clean_leftovers(out)
    assert sorted(p.name for p in removed) == [".exp.old-cd34", ".exp.tmp-ab12", f"{scratch_prefix(out)}zz"]
    assert (tmp_path / ".other.tmp-ef56").is_dir() and foreign.is_dir()  # another target's: untouched
    # Matched by name but without our marker: a user's folder, never removed (the output policy)
    assert (tmp_path / ".exp.old-users-own" / "model.onnx").read_bytes() == b"x" * 100
    assert (out / "manifest.json").read_text() == "{}"


def test_interrupted_swap_puts_the_previous_export_back(tmp_path, system_tmp):
    """Killed between swap_folder's two renames: no OUT, the old export aside, the new one in tmp."""
    out = (tmp_path / "exp").resolve()
    old = tmp_path / ".exp.old-1234"
    old.mkdir()
    (old / "manifest.json").write_text('{"version": "old"}')
    write_marker(old, "dp-export", "export-folder")
    (tmp_path / ".exp.tmp-5678").mkdir()
    clean_leftovers(out)
    assert json.loads((out / "manifest.json").read_text()) == {"version": "old"}
    assert _leftovers(out, system_tmp) == []


def test_workspace_folders_have_ordinary_permissions_and_are_removed(tmp_path, system_tmp):
    out = (tmp_path / "exp").resolve()
    with export_workspace(out) as (tmp, scratch):
        assert tmp.parent == out.parent and tmp.name.startswith(".exp.tmp-")
        assert scratch.parent == system_tmp and scratch.name.startswith(scratch_prefix(out))
        assert (tmp.stat().st_mode & 0o777) == ordinary_dir_mode()  # not mkdtemp's 0700
    assert _leftovers(out, system_tmp) == []


def test_a_second_writer_in_the_folder_fails_clearly(tmp_path, system_tmp):
    out = tmp_path / "exp"
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"unused: the lock is taken before the checkpoint is read")
    with folder_lock(tmp_path, out, RuntimeError):  # e.g. another dp-export into this folder, mid-run
        r = CliRunner().invoke(dp_export, [str(ckpt), "--out", str(out), "--formats", "onnx", "--quantize", "none"])
    assert r.exit_code == 1 and "another DeepProduct writer is writing in" in r.output, r.output
    assert not out.exists() and _leftovers(out, system_tmp) == []


# -- kill -9 of the real CLI ----------------------------------------------------------------------

def _folder_digest(folder: Path) -> str | None:
    if not folder.exists():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _complete(folder: Path) -> bool:
    """A whole export: its manifest loads and every artefact matches its recorded sha256."""
    from deepproduct.sdk.model_manifest import load_model_manifest, sha256_path

    manifest = load_model_manifest(folder)
    return all(sha256_path(folder / a.file) == a.sha256 for a in manifest.artefacts)


@pytest.mark.slow
def test_kill_9_during_dp_export_overwrite(tmp_path, tiny_manifest):
    """Two kills: one as soon as the workspace exists (so a kill surely lands mid-export; a timed kill
    missed on a fast CI machine), one at a random moment. Under load one tiny export takes a minute."""
    import torch

    from deepproduct.training.checkpoint import model_config_of, save_checkpoint
    from deepproduct.training.models import build_embedding_net

    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 16, "avg", pretrained=False).eval()
    ckpt = save_checkpoint(tmp_path / "tiny", model, model_config=model_config_of(model))
    out, systmp = tmp_path / "exp", tmp_path / "systmp"
    systmp.mkdir()
    cmd = [str(Path(sys.executable).parent / "dp-export"), str(ckpt), "--out", str(out), "--overwrite",
           "--formats", "onnx", "--quantize", "none", "--calib", str(tiny_manifest), "--calib-count", "4",
           "--parity-images", "8", "--no-clients"]
    env = {**os.environ, "TMPDIR": str(systmp)}

    def run() -> float:
        start = time.monotonic()
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
        return time.monotonic() - start

    full = run()
    assert (out.stat().st_mode & 0o777) == ordinary_dir_mode() and _complete(out)
    rng = np.random.default_rng(0)
    orphaned = 0
    for i in range(2):
        before = _folder_digest(out)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i == 0:  # the moment its workspace appears, plus a little: certainly mid-export, on any machine
            deadline = time.monotonic() + 600
            while not _leftovers(out, systmp) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, "dp-export ended before its workspace was seen"
            time.sleep(float(rng.uniform(0.0, 0.05)))
            os.kill(proc.pid, signal.SIGKILL)
        else:  # a kill at a random moment, imports included
            try:
                proc.wait(timeout=float(rng.uniform(0.2, 0.95)) * full)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        after = _folder_digest(out)
        assert after is not None and (after == before or _complete(out)), f"kill {i}: target changed or missing"
        orphaned += bool(_leftovers(out, systmp))
        run()  # the next run cleans up and replaces the target
        assert _leftovers(out, systmp) == [], f"kill {i}: orphan left after the next run"
        assert _complete(out)
    assert orphaned >= 1  # a kill did land mid-export (else this test would prove nothing)
