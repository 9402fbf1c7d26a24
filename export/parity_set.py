"""The parity set saved inside every export folder, so ``dp-export verify DIR`` is self-contained.

``parity/images/`` holds copies of the held-out photos, ``parity/parity_set.json`` their product
ids and domains (for Recall@1) and where they came from, and ``parity/reference_embeddings.npy``
the PyTorch fp32 embeddings of their preprocessed tensors. Verification on another machine
(e.g. ``predict`` on macOS) needs nothing but the folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepproduct.sdk.jsonio import loads as json_loads
from deepproduct.sdk.model_manifest import resolve_inside
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image

from .calibration import ImageSet
from .errors import ExportError

PARITY_DIR = "parity"
IMAGES_DIR = "images"
SET_FILE = "parity_set.json"
REFERENCE_FILE = "reference_embeddings.npy"


@dataclass
class ParitySet:
    images: ImageSet
    reference: np.ndarray | None  # PyTorch fp32 embeddings, or None for --images without one

    def tensors(self, spec: PreprocessingSpec) -> np.ndarray:
        return np.concatenate([preprocess_image(p, spec, "NCHW") for p in self.images.paths])


def save(folder: Path, images: ImageSet, reference: np.ndarray) -> ParitySet:
    root = folder / PARITY_DIR
    (root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    names = []
    for i, src in enumerate(images.paths):
        name = f"{i:04d}_{src.name}"
        shutil.copyfile(src, root / IMAGES_DIR / name)
        names.append(f"{IMAGES_DIR}/{name}")
    meta = {"source": images.source, "files": names, "product_ids": images.product_ids,
            "domains": images.domains, "reference": "pytorch fp32 (the checkpoint's EmbeddingNet.forward)"}
    (root / SET_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    np.save(root / REFERENCE_FILE, reference.astype(np.float32))
    saved = ImageSet([root / n for n in names], images.product_ids, images.domains, images.source)
    return ParitySet(saved, reference)


def load(folder: Path) -> ParitySet:
    """The saved parity set; a missing or damaged one is one ``ExportError`` naming what to do."""
    root = folder / PARITY_DIR
    if not (root / SET_FILE).is_file() or not (root / REFERENCE_FILE).is_file():
        raise ExportError(f"{folder}: no saved parity set ({PARITY_DIR}/{SET_FILE}); not a dp-export folder, "
                          "or verify it on your own images with --images FOLDER_OR_MANIFEST")
    try:
        meta = json_loads((root / SET_FILE).read_bytes(), source=str(root / SET_FILE))
        files = meta["files"]
        if not isinstance(files, list) or not all(isinstance(n, str) for n in files):
            raise ValueError("'files' must be a list of names")
        images = ImageSet([resolve_inside(root, n, "parity image") for n in files], meta.get("product_ids"),
                          meta.get("domains"), meta.get("source", ""))
        reference = np.load(root / REFERENCE_FILE, allow_pickle=False)
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{root}: damaged parity set ({exc})") from exc
    return ParitySet(images, reference)
