"""Crash-safe writes of files and folders: the one implementation every layer uses.

Why here: the SDK is the bottom layer (training, export and benchmarks import it, never the
reverse), and its own writers (index, bundles) need the same guarantees as checkpoints, reports
and export folders: a crash, Ctrl-C or full disk never leaves a half-written result under the
final name -- the previous one stays intact until the new one is complete.

- :func:`atomic_path` / :func:`write_atomic` / :func:`write_text_atomic`: one file, written to a
  temporary sibling and renamed onto the target (``os.replace``, atomic on POSIX);
- :func:`swap_folder`: a finished temporary folder renamed onto the target folder; an existing
  target is first renamed onto a fresh empty sibling made by ``mkdtemp`` (never a name another
  process could own) and removed afterwards.

Hashes of files and folders are :func:`deepproduct.sdk.model_manifest.sha256_file` /
``sha256_path`` (the manifest's definitions).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .locking import ordinary_file_mode


@contextmanager
def atomic_path(target: str | os.PathLike, *, mode: int | None = None, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path ``.<name>.<random>.tmp`` beside ``target``; rename it onto ``target`` only on success.

    ``mode`` replaces ``mkstemp``'s owner-only 0600 (``locking.ordinary_file_mode()``: what a
    plain ``open`` would give, for files a web server must read). ``durable`` fsyncs the file
    before the rename and the folder after it, so a power cut cannot leave the new name on
    unwritten blocks (the gallery index asks for it).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:  # what a plain open() would give (umask), not mkstemp's owner-only 0600
        mode = ordinary_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        if mode is not None:
            os.chmod(tmp_path, mode)
        yield tmp_path
        if durable:
            _fsync(tmp_path)
        os.replace(tmp_path, target)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk inside a library's write names
            exc.filename = str(target)                         # no file: the error line names the output
        raise
    if durable:
        _fsync(target.parent, best_effort=True)


def _fsync(path: Path, best_effort: bool = False) -> None:
    """fsync a file or (``best_effort``: some filesystems refuse it) a folder."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if best_effort:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not best_effort:
            raise
    finally:
        os.close(fd)


def write_atomic(target: str | os.PathLike, writer: Callable[[Path], None], *, mode: int | None = None) -> None:
    """``writer(tmp)`` fills a temporary sibling, which then replaces ``target`` (``mode``: as for :func:`atomic_path`)."""
    with atomic_path(target, mode=mode) as tmp:
        writer(tmp)


def write_text_atomic(target: str | os.PathLike, text: str, *, mode: int | None = None) -> None:
    write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"), mode=mode)


def save_figure(fig: Any, target: str | os.PathLike, *, dpi: int) -> None:
    """A matplotlib figure written atomically in the format of ``target``'s suffix (PNG, SVG, ...),
    with ordinary permissions; the figure stays open. Duck-typed: the SDK itself never imports matplotlib."""
    with atomic_path(target, mode=ordinary_file_mode()) as tmp:
        fmt = Path(target).suffix.lstrip(".").lower() or "png"
        # PNGs carry the output policy's mark, so the next run may replace them (and nothing else)
        meta = {"Software": "DeepProduct"} if fmt == "png" else None
        fig.savefig(tmp, dpi=dpi, format=fmt, metadata=meta)


def swap_folder(tmp: str | os.PathLike, out: str | os.PathLike) -> None:
    """Rename the finished folder ``tmp`` onto ``out`` (same parent folder), replacing any old ``out``.

    Between the two renames ``out`` is briefly absent, never half-written.
    """
    tmp, out = Path(tmp), Path(out)
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old)  # onto the fresh empty folder: never a name someone else owns
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


#: Text inputs (locks, logs, records) larger than this are refused before reading: /dev/zero never ends.
MAX_TEXT_INPUT_BYTES = 256 << 20


def open_regular(path: str | os.PathLike, refuse: Callable[[], Exception]) -> Any:
    """Open ``path`` for binary reading only when it is a regular file, else raise ``refuse()``.

    Why non-blocking: opening a FIFO for reading blocks until a writer appears, so a FIFO named as
    an image, a model or a manifest would hang the reader; a device would never end. Every reader of
    user-given files (images, model artefacts, manifests, text inputs) opens through this one check.
    ``FileNotFoundError`` passes through for the caller's own message."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise refuse()
    return os.fdopen(fd, "rb")


def read_regular_bytes(path: str | os.PathLike, what: str, max_bytes: int) -> bytes:
    """A user-given file's bytes -- only when it is a regular file of at most ``max_bytes``.

    Why: a FIFO blocks ``open`` forever and a device (``/dev/zero``) has no end, so reading either
    hangs or allocates gigabytes. Raises ``FileNotFoundError`` for a missing file, else one
    ``ValueError`` naming the file (the CLIs' error boundary prints it)."""
    path = Path(path)
    with open_regular(path, lambda: ValueError(f"{path}: {what} is not a regular file (a FIFO, device or folder)")) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise ValueError(f"{path}: {what} is {size} bytes, more than the {max_bytes} this reader takes")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path}: {what} grew past {max_bytes} bytes while being read")
    return data


def read_text_input(path: str | os.PathLike, what: str, max_bytes: int = MAX_TEXT_INPUT_BYTES) -> str:
    """:func:`read_regular_bytes` as text (undecodable bytes replaced, as a log reader wants)."""
    try:
        data = read_regular_bytes(path, what, max_bytes)
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    return data.decode("utf-8", errors="replace")
