"""Where one ``dp-export`` run writes, and how the next run cleans what a killed one left.

An export writes into ``.OUT.tmp-XXXX`` beside ``--out`` (renamed onto it only when every stage
passed, by :func:`deepproduct.sdk.fileio.swap_folder`) and into a scratch folder in the system
temporary directory (converter logs, calibration copies, client runs). ``kill -9`` (or a power cut)
skips the ``finally`` that removes both, so each run first removes its own target's leftovers --
only those that carry the output policy's marker (:mod:`deepproduct.sdk.output_policy`), never a
sibling matched by name alone.

Why that is safe: the whole run holds the SDK's :func:`deepproduct.sdk.locking.folder_lock` on the
output's parent folder (released by the kernel when a process dies), so while we hold it no other
DeepProduct writer is live there and every ``.OUT.tmp-*`` / ``.OUT.old-*`` sibling is an orphan.
The scratch folder's name carries a hash of the resolved ``--out``, so only that target's scratch
folders are touched (an export to another folder, live or not, is never). A second export into
the same parent folder at the same time fails at once with a clear message.

A kill between ``swap_folder``'s two renames leaves no ``OUT`` but the previous export complete in
``.OUT.old-XXXX``: the next run puts it back first, so the target is always the old or the new one.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deepproduct.sdk.locking import folder_lock, ordinary_dir_mode
from deepproduct.sdk.output_policy import check_folder_output, is_marked, write_marker

from .errors import ExportError

SCRATCH_PREFIX = "dp-export-scratch-"


def scratch_prefix(out: Path) -> str:
    """``dp-export-scratch-<12 hex of the resolved --out>-``: whose scratch folder it is."""
    return f"{SCRATCH_PREFIX}{hashlib.sha256(str(out).encode()).hexdigest()[:12]}-"


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(out: Path) -> list[Path]:
    """Remove (or, for an interrupted swap, restore) what killed runs for ``out`` left; the caller
    holds the folder lock. Returns the paths removed."""
    siblings = sorted(out.parent.glob(f".{glob.escape(out.name)}.*"))
    olds = [p for p in siblings if p.name.startswith(f".{out.name}.old-") and p.is_dir() and not p.is_symlink()]
    if not os.path.lexists(out):
        restorable = [p for p in olds if (p / "manifest.json").is_file() and is_marked(p)]
        if restorable:  # killed between swap_folder's renames: the previous export, complete
            os.rename(restorable[-1], out)
    removed = []
    for p in siblings:
        if not (p.name.startswith(f".{out.name}.tmp-") or p.name.startswith(f".{out.name}.old-")):
            continue
        # Never by name alone (docs/threat-model.md, output policy): only a folder carrying our
        # marker, or an empty folder (a run killed between mkdtemp and its marker) is a leftover.
        if is_marked(p) or (p.is_dir() and not p.is_symlink() and not any(os.scandir(p))):
            _remove(p)
            removed.append(p)
    for p in Path(tempfile.gettempdir()).glob(glob.escape(scratch_prefix(out)) + "*"):
        if p.is_dir() and not p.is_symlink() and p.stat().st_uid == os.getuid():  # ours, not another user's
            _remove(p)
            removed.append(p)
    return removed


@contextlib.contextmanager
def export_workspace(out: Path) -> Iterator[tuple[Path, Path]]:
    """Lock ``out``'s parent, clean this target's leftovers, and yield ``(tmp, scratch)``: the folder
    that becomes ``out`` (ordinary permissions, not ``mkdtemp``'s 0700) and the scratch folder; both
    are removed on exit, whatever happens."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(out.parent, out, ExportError):
        clean_leftovers(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        scratch = None
        try:
            os.chmod(tmp, ordinary_dir_mode())  # a web server running as another user must read the export
            write_marker(tmp, "dp-export", "export-folder")  # ours: the only kind of leftover a later run removes
            scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix(out)))
            yield tmp, scratch
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def weights_file(path: str | os.PathLike) -> Path:
    """The checkpoint's weights: ``NAME.safetensors`` (given with or without the suffix)."""
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def local_sources(*sources: str | None) -> list[Path]:
    """The ``--calib`` / ``--parity`` values that are local paths (inputs the output must not touch)."""
    return [Path(s) for s in sources if s and os.path.lexists(s)]


def check_export_folder(out: Path, checkpoint: Path, calib: str | None, parity: str | None,
                        overwrite: bool) -> None:
    """The output policy for ``--out`` (docs/threat-model.md): never the checkpoint's own folder or
    another input, never a folder DeepProduct did not write, never without ``--overwrite``.
    Torch-free, so the CLI refuses at once, before the converters load."""
    inputs = [checkpoint, weights_file(checkpoint), *local_sources(calib, parity)]
    check_folder_output(out, inputs, overwrite=overwrite, what="export folder (--out)", allow_empty=False,
                        kind="export-folder")
