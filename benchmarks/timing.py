"""The timing protocol shared by every host benchmark: warm up, then time single calls.

Why medians and single calls: on a shared machine the mean is dragged by whichever neighbour
woke up; the median and the minimum of many individually timed calls are what stay
comparable, and p90 shows how noisy the run was. A time budget caps slow configurations
(a 1M-vector batch-64 scan) without dropping below ``min_runs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimingStats:
    runs: int
    warmup: int
    median_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    std_ms: float

    def as_fields(self) -> dict[str, float | int]:
        return {"runs": self.runs, "warmup": self.warmup, "median_ms": self.median_ms,
                "p90_ms": self.p90_ms, "min_ms": self.min_ms, "mean_ms": self.mean_ms,
                "std_ms": self.std_ms}


def summarise(samples_ms: list[float], warmup: int = 0) -> TimingStats:
    """Median, p90 (linear interpolation), min, mean and std of per-call times in ms."""
    if not samples_ms:
        raise ValueError("no timing samples")
    a = np.asarray(samples_ms, dtype=np.float64)
    return TimingStats(runs=len(a), warmup=warmup, median_ms=round(float(np.median(a)), 4),
                       p90_ms=round(float(np.percentile(a, 90)), 4), min_ms=round(float(a.min()), 4),
                       mean_ms=round(float(a.mean()), 4), std_ms=round(float(a.std()), 4))


def time_calls(fn: Callable[[], object], runs: int, warmup: int = 5, budget_s: float | None = None,
               min_runs: int = 3) -> TimingStats:
    """Call ``fn`` ``warmup`` times untimed, then up to ``runs`` times timed one by one.

    With ``budget_s``, timing stops early once the timed calls have used the budget and at least
    ``min_runs`` were taken (the record's ``runs`` says how many were).
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    spent = 0.0
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt * 1e3)
        spent += dt
        if budget_s is not None and spent >= budget_s and len(samples) >= min_runs:
            break
    return summarise(samples, warmup)
