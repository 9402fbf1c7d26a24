"""The one atomic writer (``deepproduct.sdk.fileio``): all or nothing under the final name, chosen permissions."""

from __future__ import annotations

import numpy as np
import pytest

from deepproduct.sdk.fileio import atomic_path, write_text_atomic
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.locking import ordinary_file_mode


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.md"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target, durable=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_a_full_disk_inside_a_nameless_write_names_the_output(tmp_path):
    """A library writing through the temp path (numpy, matplotlib, ...) raises ENOSPC with no file
    name; the error must still say which output could not be written."""
    import errno

    from deepproduct.sdk.cli_boundary import _os_message

    target = tmp_path / "catalogue.dpindex"
    with pytest.raises(OSError) as info, atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.filename == str(target)
    assert _os_message(info.value) == f"{target}: no space left on the device"
    assert list(tmp_path.iterdir()) == []


def test_mode_and_durable_write(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    with atomic_path(target, mode=0o640, durable=True) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".a.bin.") and tmp.suffix == ".tmp"
        tmp.write_bytes(b"abc")
    assert target.read_bytes() == b"abc" and target.stat().st_mode & 0o777 == 0o640
    with atomic_path(tmp_path / "b.bin") as tmp:  # no mode: what open() gives (umask), not mkstemp's 0600
        tmp.write_bytes(b"")
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == ordinary_file_mode()


def test_the_index_writer_uses_ordinary_permissions(tmp_path):
    index = GalleryIndex.from_embeddings(np.eye(3, 4, dtype=np.float32), ["a", "b", "c"], storage="float32")
    index.save(tmp_path / "g.dpindex")
    assert (tmp_path / "g.dpindex").stat().st_mode & 0o777 == ordinary_file_mode()
