"""DDP on the GPU: 2 steps through ``torchrun``, one process per GPU present, NCCL.

Two checks, because of what one GPU allows:
- the trainer itself under ``torchrun --nproc_per_node <GPUs>`` with ``device=cuda`` (on one GPU
  this is world size 1, where the trainer runs without a process group; with more it is real
  DDP over NCCL) -- it must train 2 steps and write one summary and one checkpoint;
- ``ddp_worker.py``, which always joins a NCCL group and wraps the trainer's ``TrainForward`` in
  DistributedDataParallel, so NCCL's all-reduce runs even at world size 1. Its CPU twin (gloo,
  2 processes) runs in ``make test``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gpu_helpers import HAS_CUDA, NO_CUDA_REASON, device_params
from support.training import tiny_overrides

WORKER = Path(__file__).with_name("ddp_worker.py")


def _nproc(device: str) -> int:
    return torch.cuda.device_count() if device == "cuda" else 2


def _env(device: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _torchrun(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


@pytest.mark.parametrize("device", device_params(cpu_marks=(pytest.mark.slow,)))
def test_ddp_two_steps_through_torchrun(device, tmp_path):
    if device == "cuda" and not torch.distributed.is_nccl_available():
        pytest.skip("this torch build has no NCCL")
    nproc = _nproc(device)
    proc = subprocess.run(_torchrun(nproc, str(WORKER), str(tmp_path), device), env=_env(device),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    records = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nproc)]
    expected_backend = "nccl" if device == "cuda" else "gloo"
    for rec in records:
        assert rec["world_size"] == nproc and rec["backend"] == expected_backend
        assert rec["device"].startswith(device) and rec["all_reduce_sum"] == nproc
        assert len(rec["losses"]) == 2 and all(map(torch.isfinite, map(torch.tensor, rec["losses"])))
    # Gradients were averaged across ranks, so every rank holds the same weights after the steps.
    checksums = [rec["param_checksum"] for rec in records]
    assert max(checksums) - min(checksums) <= 1e-6 * max(1.0, abs(checksums[0])), checksums


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA_REASON)
def test_trainer_under_torchrun_on_every_gpu(tiny_manifest, tmp_path):
    nproc = _nproc("cuda")
    cmd = _torchrun(nproc, "-m", "deepproduct.training.train_cli", "--quiet",
                    *tiny_overrides(tiny_manifest, tmp_path, name="ddp-cuda",
                                    **{"optim.epochs": 1, "optim.steps_per_epoch": 2, "device": "cuda"}))
    proc = subprocess.run(cmd, env=_env("cuda"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp-cuda" / "summary.json").read_text())
    assert summary["world_size"] == nproc and summary["steps"] == 2
    assert summary["device"].startswith("cuda")
    assert (tmp_path / "ddp-cuda" / "checkpoints" / "last.safetensors").is_file()
