"""This machine's memory copy bandwidth: the floor under any exact scan of a large gallery.

An exact search must read every stored byte once per query batch, so bytes scanned divided by
the bandwidth is a lower bound on its latency; how close a scan gets to it says whether more
arithmetic tuning can help (far from it) or only fewer bytes can (near it).

Convention (STREAM "Copy"): bytes moved = bytes read + bytes written, on arrays much larger
than the caches, best of ``repeats`` (the best is the least disturbed by neighbours). One
thread, like the single-threaded searches it bounds.
"""

from __future__ import annotations

import time

import numpy as np


def copy_bandwidth(nbytes: int = 256 << 20, repeats: int = 5) -> float:
    """Measured single-thread copy bandwidth in GB/s (1e9 bytes/s), read + write counted."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def scan_bound_ms(bytes_scanned: int, gb_per_s: float) -> float:
    """Milliseconds to stream ``bytes_scanned`` once at ``gb_per_s``."""
    return bytes_scanned / (gb_per_s * 1e9) * 1e3
