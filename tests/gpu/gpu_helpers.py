"""Shared by the GPU tests: the CUDA skip, device parametrisation, and the comparisons they assert.

Why the comparisons live here and run on CPU too: the CUDA tests run only on a lent GPU machine, a
few minutes per task at most; a bug in how two runs are compared must be found here, not there.
Every CUDA test has a CPU twin (or a CPU test of its helper) that runs in ``make test``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "demo.yaml"

HAS_CUDA = torch.cuda.is_available()
NO_CUDA_REASON = ("needs a CUDA GPU: torch.cuda.is_available() is False here (a CPU-only machine, or "
                  "CUDA_VISIBLE_DEVICES is empty); run `pytest -m gpu` on a GPU machine, see docs/benchmarks.md")

#: Marks of a test that needs CUDA: selected by ``-m gpu``, skipped with a reason without CUDA.
GPU_MARKS = (pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA_REASON))


def device_params(cpu_marks: tuple = ()) -> list:
    """``cpu`` (plus ``cpu_marks``, e.g. slow) and ``cuda`` (gpu-marked, skipped without CUDA)."""
    return [pytest.param("cpu", id="cpu", marks=cpu_marks), pytest.param("cuda", id="cuda", marks=GPU_MARKS)]


def deterministic_cublas() -> None:
    """cuBLAS is deterministic only with a fixed workspace; it must be set before its first handle,
    so at import of every GPU test module (the trainer asks for deterministic algorithms)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@dataclass(frozen=True)
class Agreement:
    """How close ``candidate`` is to ``reference``: cosine of the flattened tensors, the largest
    absolute difference, and the norm of the difference relative to the reference's norm."""

    name: str
    cosine: float
    max_abs: float
    rel_norm: float

    def __str__(self) -> str:
        return f"{self.name}: cosine {self.cosine:.6f}, max |diff| {self.max_abs:.3g}, rel. norm {self.rel_norm:.3g}"


def agreement(name: str, reference: torch.Tensor, candidate: torch.Tensor) -> Agreement:
    """Compared in float64 on the CPU, so the comparison adds no rounding of its own."""
    a = reference.detach().to("cpu", torch.float64).reshape(-1)
    b = candidate.detach().to("cpu", torch.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {tuple(reference.shape)} vs {tuple(candidate.shape)}")
    na, nb = float(a.norm()), float(b.norm())
    cosine = 1.0 if na == nb == 0.0 else (float(a @ b) / (na * nb) if na and nb else 0.0)
    diff = a - b
    return Agreement(name, cosine, float(diff.abs().max()) if diff.numel() else 0.0,
                     float(diff.norm()) / na if na else float(diff.norm()))


def flat(tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One vector of every tensor, in name order (the global gradient, say)."""
    return torch.cat([tensors[k].detach().to("cpu", torch.float64).reshape(-1) for k in sorted(tensors)])


def underflow_fraction(reference: Mapping[str, torch.Tensor], candidate: Mapping[str, torch.Tensor],
                       floor: float = 2.0 ** -24) -> float:
    """Share of the elements that are at least ``floor`` in magnitude in the reference but exactly
    zero in the candidate: what float16 gradients without a GradScaler lose (2**-24 is float16's
    smallest subnormal)."""
    ref, cand = flat(reference), flat(candidate)
    significant = ref.abs() >= floor
    n = int(significant.sum())
    return float(((cand == 0) & significant).sum()) / n if n else 0.0


def assert_all_finite(tensors: Mapping[str, torch.Tensor], what: str) -> None:
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    assert not bad, f"{what}: non-finite values in {bad[:5]}"


def assert_close_to(ref: Agreement, *, min_cosine: float, max_rel_norm: float | None = None,
                    max_abs: float | None = None) -> None:
    """One assertion whose message prints every figure (a failure on the GPU machine must say how far off)."""
    ok = ref.cosine >= min_cosine and not math.isnan(ref.cosine)
    ok &= max_rel_norm is None or ref.rel_norm <= max_rel_norm
    ok &= max_abs is None or ref.max_abs <= max_abs
    assert ok, (f"{ref} -- allowed: cosine >= {min_cosine}"
                + (f", rel. norm <= {max_rel_norm}" if max_rel_norm is not None else "")
                + (f", max |diff| <= {max_abs}" if max_abs is not None else ""))


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The gradients a training step left on the model (CPU copies, float32)."""
    return {n: p.grad.detach().float().cpu().clone() for n, p in model.named_parameters() if p.grad is not None}
