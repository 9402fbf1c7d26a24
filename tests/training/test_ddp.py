"""A real 2-process torchrun (gloo backend on CPU) trains and writes one summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.training import tiny_overrides


@pytest.mark.slow  # two torchrun processes train
def test_torchrun_two_processes_gloo(tiny_manifest, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "deepproduct.training.train_cli", "--quiet",
           *tiny_overrides(tiny_manifest, tmp_path, name="ddp", **{"optim.epochs": 1, "device": "cpu"})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["steps"] == 3
    assert (tmp_path / "ddp" / "checkpoints" / "last.safetensors").is_file()
