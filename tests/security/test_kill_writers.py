"""``kill -9`` at random points of an index write: the target is never left changed (it is the
old file or the complete new one), and the next run leaves no orphan temporary file.

Two levels: the real ``dp-search build`` CLI (killed anywhere between start-up and exit), and the
index writer alone on a ~16 MB index, killed at a random point of the write itself.
The kill points are drawn from a seeded generator over the measured duration of a full run.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.tiny_model import write_catalogue

from deepproduct.sdk.gallery_index import GalleryIndex

SAVE_SCRIPT = """
import sys, numpy as np
from deepproduct.sdk.gallery_index import GalleryIndex
rng = np.random.default_rng(int(sys.argv[2]))
index = GalleryIndex.from_embeddings(rng.normal(size=(32768, 128)).astype(np.float32),
                                     [f"p{i}" for i in range(32768)], storage="float32")
print("saving", flush=True)
index.save(sys.argv[1])
"""


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def _timed(cmd: list[str], after_line: bool) -> float:
    """Seconds of a full run (from its first output line when ``after_line``: the write alone)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    start = time.monotonic()
    if after_line:
        proc.stdout.readline()
        start = time.monotonic()
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    return time.monotonic() - start


def _kill_at(cmd: list[str], delay: float, after_line: bool) -> int:
    """SIGKILL ``delay`` s after start, or after the child prints its first line (``after_line``)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if after_line else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if after_line:
        proc.stdout.readline()
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    rc = proc.wait(timeout=60)
    if proc.stdout:
        proc.stdout.close()
    return rc


def _check_kills(target: Path, make_cmd, kills: int, seed: int, expected_count: int, after_line: bool = False,
                 until_orphaned: int = 0, max_kills: int = 0) -> int:
    """Returns how many kills left a temporary file behind (that the next run then removed).

    ``kills`` kills always; then, while fewer than ``until_orphaned`` of them landed inside a
    write, more, up to ``max_kills`` in all: the write is a short window of the run, and on a
    loaded machine the measured duration drifts, so a fixed number of kills sometimes missed it.
    """
    rng = np.random.default_rng(seed)
    orphaned = 0
    full = _timed(make_cmd(0), after_line)
    i = 0
    while i < kills or (orphaned < until_orphaned and i < max_kills):
        i += 1
        if i % 8 == 0:
            full = _timed(make_cmd(200 + i), after_line)  # follow the machine's current speed
        before = _digest(target)
        rc = _kill_at(make_cmd(i), float(rng.uniform(0.0, 1.1)) * full, after_line)
        after = _digest(target)
        if after != before:  # then the write must have completed (the kill came after the rename)
            assert after is not None and len(GalleryIndex.load(target)) == expected_count, f"kill {i} (rc {rc})"
        elif after is not None:
            GalleryIndex.load(target)  # the old file, untouched and valid
        orphaned += bool(_leftovers(target.parent, target.name))
        subprocess.run(make_cmd(100 + i), check=True, capture_output=True, timeout=300)  # the next run
        assert _leftovers(target.parent, target.name) == [], f"kill {i}: orphan temporary file"
        GalleryIndex.load(target)
    return orphaned


@pytest.mark.slow
def test_kill_9_during_index_writes(tmp_path):
    target = tmp_path / "big.dpindex"
    orphaned = _check_kills(target, lambda seed: [sys.executable, "-c", SAVE_SCRIPT, str(target), str(seed)],
                            kills=6, seed=0, expected_count=32768, after_line=True, until_orphaned=1, max_kills=48)
    assert orphaned >= 1  # the kills did land inside writes (else this test would prove nothing)


@pytest.mark.slow
def test_kill_9_during_dp_search_build(tmp_path, tiny_model_dir):
    write_catalogue(tmp_path / "cat", products=6, per_product=2)
    model = tiny_model_dir
    target = tmp_path / "cat.dpindex"
    cmd = [sys.executable, "-m", "deepproduct.sdk.cli", "build", "--model", str(model), "--images",
           str(tmp_path / "cat"), "--out", str(target), "--no-progress"]
    _check_kills(target, lambda seed: [*cmd, "--storage", "int8" if seed % 2 else "float32"], kills=3, seed=1,
                 expected_count=12)
