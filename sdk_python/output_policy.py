"""The one output policy: what a DeepProduct command may overwrite, and what it must refuse.

Why one module: each writer used to decide for itself, and a probe found five ways to lose a
user's data (an export replacing the checkpoint's own folder, a run folder retrained over, an
index written over its own image list, a backup folder deleted by name). Every command that
writes (``dp-data``, ``dp-train``, ``dp-export``, ``dp-search``, ``dp-bench``) asks this module
*before any work*, so a refusal costs nothing and leaves every file as it was. The rules, written
out for users in docs/threat-model.md ("Output policy"):

1. An output that is, contains, or lies inside one of the command's inputs is refused.
2. An output that is an existing regular file where a folder is expected (or lies under a
   regular file) is refused; a file output that is an existing folder is refused.
3. An existing folder is replaced only when this project wrote it: it holds the marker file
   :data:`MARKER_NAME` (``{"format": "deepproduct-output", "version": 1, "owner": ...}``) and the
   user asked (``--overwrite``). Anything else is refused, naming the folder.
   A file output is replaced only when it is empty or starts the way our writer of that kind
   starts its files (:func:`looks_ours`: the index magic, our PNG text chunk, the manifest header,
   a records line, the markdown marker).
4. Leftovers (``.OUT.tmp-*``, ``.OUT.old-*``) are removed only when they carry a marker, never by
   name alone (:func:`is_marked`).

File outputs (an index, a PNG, a CSV) are replaced atomically by :mod:`deepproduct.sdk.fileio`;
rule 1 and 2 are what keep them off the user's own files.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

#: The marker file every folder this project writes carries (docs/threat-model.md).
MARKER_NAME = ".deepproduct-output.json"
MARKER_FORMAT = "deepproduct-output"
MARKER_VERSION = 1
#: A marker is tiny; anything bigger is not ours (and is never read whole).
_MARKER_MAX_BYTES = 4096


class OutputRefused(ValueError):
    """The output policy refused a target; the message is one line naming the path and the rule."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def probe_writable(target: Path) -> None:
    """Fail now, not after an hour of work, when the folder that will receive ``target`` cannot be
    written (read-only file system, permissions, no inodes): a probe file is made and removed in
    the nearest existing folder. Raises the ``OSError`` (the error boundary names it, exit 4)."""
    folder = _resolved(target).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        fd, name = tempfile.mkstemp(prefix=".deepproduct-write-probe-", dir=folder)
    except OSError as exc:  # name the folder, not the probe file
        raise OSError(exc.errno, exc.strerror, str(folder)) from None
    os.close(fd)
    os.unlink(name)


def _regular_file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (``--out FILE/x``)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return None if parent.is_dir() else parent
    return None


def check_inputs(out: Path, inputs: Iterable[str | os.PathLike | None], what: str, *,
                 allow_inside_folders: bool = False) -> None:
    """Rule 1: ``out`` must not be, contain, or lie inside any input (symlinks resolved).

    ``allow_inside_folders``: a *file* output may sit inside an input folder (a manifest beside
    the images it lists, an index beside its catalogue) -- it still never equals an input file.
    """
    target = _resolved(out)
    for raw in inputs:
        if raw is None:
            continue
        src = _resolved(raw)
        if target == src:
            raise OutputRefused(out, f"{what} is also one of this command's inputs ({raw}); "
                                     "write it somewhere else")
        if _is_within(src, target):
            raise OutputRefused(out, f"{what} contains this command's input {raw}; write it somewhere else")
        if src.is_dir() and _is_within(target, src) and not allow_inside_folders:
            raise OutputRefused(out, f"{what} lies inside this command's input folder {raw}; "
                                     "write it somewhere else")


#: What each kind of file output looks like when this project wrote it (rule 3 for files): an
#: existing non-empty file is replaced only if it starts like one of ours.
PNG_TEXT_KEY = "Software"
PNG_TEXT_VALUE = "DeepProduct"
MARKDOWN_MARKER = "<!-- written by DeepProduct; replaced when the command runs again -->"
_KIND_WORDS = {"dpindex": "a .dpindex gallery index", "png": "a PNG written by DeepProduct",
               "csv-manifest": "a dataset manifest CSV", "jsonl-records": "a benchmark records file (JSON lines)",
               "markdown": "a report written by DeepProduct",
               "transfer-lock": "a transfer source lock (dp-data transfer-lock)",
               "dp-json": "a JSON file written by DeepProduct"}


def looks_ours(path: str | os.PathLike, kind: str) -> bool:
    """True when the regular file ``path`` starts the way our writer of ``kind`` starts its files."""
    try:
        with open(path, "rb", opener=lambda p, f: os.open(p, f | getattr(os, "O_NONBLOCK", 0))) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return False
            head = fh.read(4096)
    except OSError:
        return False
    if kind == "dpindex":
        return head.startswith(b"DPINDEX\x00")
    if kind == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n") and f"{PNG_TEXT_KEY}\x00{PNG_TEXT_VALUE}".encode() in head
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    first = text.split("\n", 1)[0].strip()
    if kind == "csv-manifest":
        return first.replace(" ", "").startswith("path,product_id,")
    if kind == "jsonl-records":
        return first.startswith("{") and '"kind"' in first
    if kind == "markdown":
        return first == MARKDOWN_MARKER
    if kind == "dp-json":
        return first.startswith("{") and '"written_by": "DeepProduct' in text
    if kind == "transfer-lock":
        return first == "{" and '"format": "deepproduct-transfer-lock"' in text
    raise ValueError(f"unknown output kind {kind!r}")


def png_info() -> object:
    """The PNG text chunk that marks a PNG as ours (``looks_ours(..., "png")``); pass as ``pnginfo=``."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_TEXT_KEY, PNG_TEXT_VALUE)
    return info


def check_file_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                      *, what: str = "output", allow_inside_folders: bool = True, kind: str | None = None) -> Path:
    """Rules 1-3 for a file output, replaced atomically: an existing non-empty file must be one of
    ours of ``kind`` (a user's ``notes.txt`` given as ``--out`` is refused, not replaced)."""
    out = Path(out)
    check_inputs(out, inputs, what, allow_inside_folders=allow_inside_folders)
    if os.path.lexists(out):
        st = os.stat(out) if out.exists() else os.lstat(out)
        if stat.S_ISDIR(st.st_mode):
            raise OutputRefused(out, f"{what} is an existing folder; give a file name")
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            raise OutputRefused(out, f"{what} exists and is not a regular file (a FIFO, socket or device)")
        if kind is not None and stat.S_ISREG(st.st_mode) and st.st_size > 0 and not looks_ours(out, kind):
            raise OutputRefused(out, f"{what} exists and is not {_KIND_WORDS[kind]}; refusing to replace it "
                                     "(move it away or choose another name)")
    blocker = _regular_file_above(_resolved(out))
    if blocker is not None:
        raise OutputRefused(out, f"{what} lies under {blocker}, which is a file, not a folder")
    probe_writable(out)
    return out


def check_folder_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                        *, overwrite: bool, what: str = "output folder", flag: str = "--overwrite",
                        allow_empty: bool = True, kind: str | None = None) -> Path:
    """Rules 1-3 for a folder output, before any work.

    A missing folder is fine; an empty one too with ``allow_empty`` (else it needs ``overwrite``,
    but no marker: nothing in it can be lost). An existing folder with
    content needs ``overwrite`` *and* this project's marker; without the marker it is refused
    whatever the flag says, because it may be the user's.
    """
    out = Path(out)
    check_inputs(out, inputs, what)
    blocker = _regular_file_above(_resolved(out))
    if blocker is not None:
        raise OutputRefused(out, f"{what} lies under {blocker}, which is a file, not a folder")
    if not os.path.lexists(out):
        probe_writable(out)
        return out
    if not out.is_dir():
        raise OutputRefused(out, f"{what} is an existing file, not a folder; give a folder name")
    if not any(os.scandir(out)):  # nothing in it can be lost
        if allow_empty or overwrite:
            probe_writable(out / "x")
            return out
        raise OutputRefused(out, f"{what} already exists (empty); pass {flag} to replace it")
    if not is_marked(out):
        raise OutputRefused(out, f"{what} exists and was not written by DeepProduct (no {MARKER_NAME}); "
                                 "refusing to replace it: choose a new folder or move it away")
    marker = read_marker(out) or {}
    if kind is not None and marker.get("kind") != kind:  # e.g. an export over a training run's folder
        raise OutputRefused(out, f"{what} holds another DeepProduct output ({marker.get('owner')}: "
                                 f"{marker.get('kind')}), not a {kind}; refusing to replace it")
    if not overwrite:
        raise OutputRefused(out, f"{what} already exists; pass {flag} to replace it")
    probe_writable(out)
    return out


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The folder's marker as a dict, or None when absent, oversized, unreadable or not ours."""
    path = Path(folder) / MARKER_NAME
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MARKER_MAX_BYTES:
            return None
        with open(path, "rb") as f:
            doc = json.loads(f.read(_MARKER_MAX_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != MARKER_FORMAT or not isinstance(doc.get("owner"), str):
        return None
    return doc


def is_marked(folder: str | os.PathLike) -> bool:
    """True for a real folder (not a symlink) that carries this project's marker."""
    folder = Path(folder)
    return folder.is_dir() and not folder.is_symlink() and read_marker(folder) is not None


def write_marker(folder: str | os.PathLike, owner: str, kind: str) -> Path:
    """Mark ``folder`` as written by ``owner`` (a command name, e.g. ``dp-export``); atomic."""
    from .fileio import write_text_atomic
    from .locking import ordinary_file_mode

    doc = {"format": MARKER_FORMAT, "version": MARKER_VERSION, "owner": owner, "kind": kind,
           "pid": os.getpid(), "created_unix": int(time.time())}
    target = Path(folder) / MARKER_NAME
    write_text_atomic(target, json.dumps(doc, sort_keys=True) + "\n", mode=ordinary_file_mode())
    return target
