"""`make setup` checks the free disk before it creates a new venv (about 9 GB, torch's CUDA wheel
included): pip's own "No space left on device" comes minutes in and names no size."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".venv/.deepproduct-installed"


def _make(tmp_path: Path, min_free_gb: int) -> subprocess.CompletedProcess[str]:
    """Run only the venv rule in a scratch copy of the Makefile; PYTHON=false so nothing installs."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("setup.cfg", "pyproject.toml", "constraints.txt"):
        (tmp_path / name).write_text("")
    return subprocess.run(["make", "--no-print-directory", STAMP, "PYTHON=false",
                           f"DP_SETUP_MIN_FREE_GB={min_free_gb}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_too_little_disk_is_one_clear_line_before_any_install(tmp_path: Path) -> None:
    result = _make(tmp_path, 10**6)  # a million GB: never free
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("make setup:")]
    assert len(lines) == 1 and "needs about 1000000 GB free" in lines[0] and "DP_SETUP_MIN_FREE_GB=0" in lines[0]
    assert "-m venv" not in result.stdout  # stopped before the venv was attempted
    assert not (tmp_path / ".venv").exists()


def test_zero_skips_the_check(tmp_path: Path) -> None:
    result = _make(tmp_path, 0)
    assert "make setup:" not in result.stderr
    assert "false -m venv .venv" in result.stdout  # went on to create the venv (PYTHON=false fails it)
