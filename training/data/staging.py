"""Publishing a generator's images folder: one swap for `dp-data synth` and `dp-data transfer`.

Why a staging folder and this order: a generator writes every image into a hidden staging folder
first, so a crash leaves the previous data intact; the marker file says which generator wrote the
folder (a later run replaces only folders carrying its own marker, never a user's images); and the
old manifest is removed before the swap, so no manifest ever points at half-replaced images.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deepproduct.sdk.fileio import swap_folder


def staging_path(images: Path) -> Path:
    """The hidden sibling a generator fills before :func:`staged_images` publishes it as ``images``."""
    return images.parent / f".{images.name}.partial"


@contextmanager
def staged_images(images: Path, manifest: Path, marker: str, writer: str, *, progress: bool, total: int,
                  unit: str, desc: str) -> Iterator[Callable[[int], None]]:
    """Empty the staging folder and yield ``advance(n)`` for the progress bar (a no-op without one).

    On success the filled staging folder is published as ``images``
    (:func:`publish_staged_images`); on any error, Ctrl-C included, it is removed and ``images``
    stays as it was.
    """
    staging = staging_path(images)
    images.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    bar = None
    if progress:
        from ..progress import progress_bar  # tqdm on a terminal, a few lines in a log

        bar = progress_bar(total=total, unit=unit, desc=desc)
    try:
        yield bar.update if bar is not None else (lambda n: None)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    publish_staged_images(staging, images, manifest, marker, writer)


def publish_staged_images(staging: Path, images: Path, manifest: Path, marker: str, writer: str) -> None:
    """Mark ``staging`` as written by ``writer`` and swap it in as ``images``; ``manifest`` goes first."""
    (staging / marker).write_text(f"images written by {writer}\n")
    manifest.unlink(missing_ok=True)  # never a manifest over half-replaced images
    swap_folder(staging, images)
