"""On the GPU, a run stopped after its first epoch and resumed equals the uninterrupted run.

The CPU version is tests/training/test_trainer.py::test_resume_equals_uninterrupted_run; this one
runs it with ``device=cuda`` and the trainer's CUDA defaults (AMP and channels_last on), because
the checkpoint holds CPU copies of the weights and optimiser state: moving them back to the GPU,
and the per-epoch reseeding, must give the same weights as never stopping. Same tolerance as on
CPU (rtol 1e-4, atol 1e-5); cuBLAS runs deterministically (CUBLAS_WORKSPACE_CONFIG).
"""

from __future__ import annotations

from gpu_helpers import GPU_MARKS, deterministic_cublas
from support.training import assert_resume_equals_uninterrupted

deterministic_cublas()

pytestmark = list(GPU_MARKS)


def test_resume_on_gpu_equals_uninterrupted_run(tiny_manifest, tmp_path):
    assert_resume_equals_uninterrupted(tiny_manifest, tmp_path, device="cuda")
