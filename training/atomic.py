"""Atomic file writes for training (checkpoints, reports, configs): the SDK's implementation.

Kept as an import path for the training modules; the one implementation is
:mod:`deepproduct.sdk.fileio` (the bottom layer, also used by export and the SDK's writers).
"""

from deepproduct.sdk.fileio import atomic_path, write_atomic, write_text_atomic

__all__ = ["atomic_path", "write_atomic", "write_text_atomic"]
