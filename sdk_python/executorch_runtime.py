"""One ``.pte`` ``forward`` method in the ExecuTorch runtime, safe across thread-count changes.

Why this exists: ExecuTorch's Python bindings have one process-wide thread pool, resized only by
``_unsafe_reset_threadpool(n)``, and an XNNPACK delegate keeps a pointer to the pool it was
loaded with. Resetting the pool after a method was loaded leaves that pointer dangling: the next
``execute`` aborts the process (measured with executorch 1.5.1: "Fatal Python error: Aborted"
when a 2-thread runner was built after a 1-thread one). So every reset bumps a generation
counter, and a method loaded in an older generation is loaded again before it runs.

Optional: imports ``executorch`` (and so torch, whose tensors the bindings take) only when a
:class:`PteMethod` is created; ``deepproduct.sdk`` never needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

_POOL: dict[str, int | None] = {"threads": None, "generation": 0}


def use_threads(threads: int | None) -> int:
    """Make the pool ``threads`` wide (None: leave it) and return the pool's generation."""
    if threads is not None and int(threads) != _POOL["threads"]:
        if int(threads) < 1:
            raise ValueError(f"thread count must be positive, got {threads}")
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(int(threads))
        _POOL["threads"] = int(threads)
        _POOL["generation"] = int(_POOL["generation"] or 0) + 1
    return int(_POOL["generation"] or 0)


class PteMethod:
    """``forward`` of a ``.pte``: NCHW float32 numpy in, numpy out, at ``threads`` (None: as is)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import torch
        from executorch.runtime import Runtime

        self.path = Path(path)
        self.threads = threads
        self._torch = torch
        self._runtime = Runtime.get()
        self._generation = -1
        self._method: Any = None
        self._load()

    def _load(self) -> None:
        self._generation = use_threads(self.threads)
        self._method = self._runtime.load_program(str(self.path)).load_method("forward")

    @property
    def input_shape(self) -> list[int]:
        return list(self._method.metadata.input_tensor_meta(0).sizes())

    def ready(self) -> None:
        """Bring the pool to this method's thread count, reloading if the pool changed under it."""
        if use_threads(self.threads) != self._generation:
            self._load()

    def tensor(self, x: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def execute_tensor(self, t: Any) -> np.ndarray:
        """Run a prepared tensor (call :meth:`ready` after any other method may have resized the pool)."""
        return self._method.execute([t])[0].numpy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.ready()
        return self.execute_tensor(self.tensor(x))
