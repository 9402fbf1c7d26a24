"""Writer exclusion and ordinary permissions for the files the SDK writes (index, bundles).

Why a lock on the target's *folder*: writers assemble a temporary sibling and rename it into
place, so the target's own inode changes under them and cannot carry a lock; a lock file
would itself be a leftover. ``flock`` on the folder's descriptor leaves nothing behind, is
released by the kernel when the process dies (``kill -9`` included), and while a writer holds
it no other DeepProduct writer is mid-write in that folder -- which is what lets the next run
delete stale temporary files of its target without racing a live writer. A second writer
fails at once with a clear message instead of silently overwriting the first one's result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking, documented in docs/threat-model.md
    fcntl = None  # type: ignore[assignment]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_dir_mode() -> int:
    """0777 minus the umask (what ``mkdir`` gives), instead of ``mkdtemp``'s owner-only 0700."""
    return 0o777 & ~_umask()


def ordinary_file_mode() -> int:
    return 0o666 & ~_umask()


@contextlib.contextmanager
def folder_lock(folder: Path, target: Path, error: Callable[[str], Exception]) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``folder`` while writing ``target`` in it."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise error(f"{target}: another DeepProduct writer is writing in {folder} right now; "
                        "wait for it to finish (or write elsewhere)") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock
