"""Publishing a generator's images folder: one swap for `dp-data synth` and `dp-data transfer`.

Why a staging folder and this order: a generator writes every image into a hidden staging folder
first, so a crash leaves the previous data intact; the marker file says which generator wrote the
folder (a later run replaces only folders carrying its own marker, never a user's images); and the
old manifest is removed before the swap, so no manifest ever points at half-replaced images.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def publish_staged_images(staging: Path, images: Path, manifest: Path, marker: str, writer: str) -> None:
    """Mark ``staging`` as written by ``writer`` and swap it in as ``images``; ``manifest`` goes first."""
    (staging / marker).write_text(f"images written by {writer}\n")
    manifest.unlink(missing_ok=True)  # never a manifest over half-replaced images
    if images.exists():
        shutil.rmtree(images)
    os.replace(staging, images)
