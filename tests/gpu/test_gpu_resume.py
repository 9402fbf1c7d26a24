"""On the GPU, a run stopped after its first epoch and resumed equals the uninterrupted run.

The CPU version is tests/training/test_trainer.py::test_resume_equals_uninterrupted_run; this one
runs it with ``device=cuda`` and the trainer's CUDA defaults (AMP and channels_last on), because
the checkpoint holds CPU copies of the weights and optimiser state: moving them back to the GPU,
and the per-epoch reseeding, must give the same weights as never stopping. Same tolerance as on
CPU (rtol 1e-4, atol 1e-5); cuBLAS runs deterministically (CUBLAS_WORKSPACE_CONFIG).
"""

from __future__ import annotations

import torch
from gpu_helpers import GPU_MARKS, deterministic_cublas
from support.training import tiny_overrides

from deepproduct.training.checkpoint import load_model
from deepproduct.training.config import load_config
from deepproduct.training.trainer import Trainer

deterministic_cublas()

pytestmark = list(GPU_MARKS)


def _trainer(manifest, out, name: str) -> Trainer:
    return Trainer(load_config(None, tiny_overrides(manifest, out, name=name, device="cuda")), progress=False)


def test_resume_on_gpu_equals_uninterrupted_run(tiny_manifest, tmp_path):
    full = _trainer(tiny_manifest, tmp_path, "full")
    assert full.device.type == "cuda" and full.use_amp
    full.train()
    half = _trainer(tiny_manifest, tmp_path, "half")
    half.cfg.optim.epochs = 1  # killed after epoch 1: only its checkpoint survives
    half.train()
    resumed = _trainer(tiny_manifest, tmp_path, "half")
    resumed.resume(tmp_path / "half" / "checkpoints" / "last.safetensors")
    assert resumed.start_epoch == 1 and resumed.step == 3
    resumed.train()
    a, _ = load_model(tmp_path / "full" / "checkpoints" / "last.safetensors")
    b, _ = load_model(tmp_path / "half" / "checkpoints" / "last.safetensors")
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5, msg=name)


def test_optimiser_state_comes_back_on_the_gpu(tiny_manifest, tmp_path):
    """After --resume every AdamW tensor lives on the GPU again (a CPU one would fail at the step)."""
    first = _trainer(tiny_manifest, tmp_path, "opt")
    first.cfg.optim.epochs = 1
    first.train()
    resumed = _trainer(tiny_manifest, tmp_path, "opt")
    resumed.resume(tmp_path / "opt" / "checkpoints" / "last.safetensors")
    devices = {v.device.type for s in resumed.optimizer.state.values() for v in s.values()
               if isinstance(v, torch.Tensor) and v.dim() > 0}
    assert devices == {"cuda"}, devices
