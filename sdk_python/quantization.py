"""Per-dimension symmetric int8 scalar quantisation of unit embeddings (docs/index-format.md).

Per-dimension scales instead of one global scale: trained embeddings use some dimensions far
more than others, and a global scale would waste most of the 255 levels on the quiet ones.
Symmetric (no zero point) keeps the score a plain dot product with the scales folded into
the query, which is what makes the int8 scan a single widened BLAS call.
"""

from __future__ import annotations

import numpy as np

QMAX = 127
_ROWS = 1 << 16


def fit_scales(vectors: np.ndarray) -> np.ndarray:
    """s[d] = max_i |x[i, d]| / 127 (float64 division, stored float32); 1/127 for all-zero columns."""
    peak = np.zeros(vectors.shape[1], np.float64)
    for start in range(0, vectors.shape[0], _ROWS):
        block = np.abs(np.asarray(vectors[start:start + _ROWS]))  # exact in the input's own precision
        np.maximum(peak, block.max(axis=0, initial=0.0), out=peak)
    peak[peak == 0] = 1.0
    return (peak / QMAX).astype(np.float32)


def quantize(vectors: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes round_half_even(x / s) clipped to [-127, 127], and how many values were clipped.

    Clipping only happens for items added after the scales were fitted on other data.
    """
    scales64 = np.asarray(scales, dtype=np.float64)
    codes = np.empty(vectors.shape, np.int8)
    clipped = 0
    for start in range(0, vectors.shape[0], _ROWS):
        q = np.rint(np.asarray(vectors[start:start + _ROWS], dtype=np.float64) / scales64)
        clipped += int(np.count_nonzero(np.abs(q) > QMAX))
        codes[start:start + _ROWS] = np.clip(q, -QMAX, QMAX)
    return codes, clipped


def dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """x^[i, d] = c[i, d] * s[d] in float32 (what the int8 score is a dot product with)."""
    return codes.astype(np.float32) * np.asarray(scales, dtype=np.float32)
