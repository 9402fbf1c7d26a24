"""Parity figures: cosine against PyTorch, Recall@1, and the two real TFLite clients.

Every artefact is run by a real runtime on the same preprocessed held-out photos and compared
with the PyTorch embeddings saved at export time (``parity/reference_embeddings.npy``). A failed
threshold is a failed export or verify, with the figures in the message.

Client checks (TFLite Task Library and MediaPipe ``ImageEmbedder``, each in its own virtualenv):
- agreement at the model's input size: each parity image's S x S crop (our preprocessing, rounded
  to 8-bit PNG) goes through the client, whose own resize is then the identity, and is compared
  with the ai-edge-litert interpreter on the same pixels / 255 (threshold 0.9999): this proves
  the metadata, the colour order and the layout are read as we intend.
- drift on larger photos (measured, not gated): the original photo, and a copy enlarged to a 512 px
  shorter side, go through the client restricted to our centre crop (region of interest), against
  our own preprocessing + interpreter. What remains is the resize algorithm: the clients use plain
  bilinear without antialiasing, ours antialiases (docs/export.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deepproduct.sdk.preprocessing import PreprocessingSpec, load_rgb, preprocess_image, resized_size

from .recall_gate import query_hits

CLIENT_AGREEMENT_THRESHOLD = 0.9999
DRIFT_SHORTER_SIDE = 512


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(na * nb, 1e-30)


def recall_at_1(embeddings: np.ndarray, product_ids: list[str] | None, domains: list[str] | None
                ) -> float | None:
    """Consumer-to-shop Recall@1: user photos query the shop images by cosine, top-1 product
    (the mean of the gate's per-query hits, so the figure and the paired test share one ranking)."""
    hits = query_hits(embeddings, product_ids, domains)
    return None if hits is None else int(hits.sum()) / len(hits)


@dataclass
class ArtefactParity:
    key: str  # format/precision
    runtime: str
    cosine_mean: float
    cosine_min: float
    threshold: float
    recall_at_1: float | None
    recall_drop_points: float | None
    max_recall_drop_points: float | None
    passed: bool
    failures: list[str] = field(default_factory=list)
    images: int = 0
    reference_recall_at_1: float | None = None
    recall_gate: dict | None = None  # recall_gate.GateResult.to_dict(), when gated

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "images": self.images,
                "reference_recall_at_1": self.reference_recall_at_1, "cosine_mean": round(self.cosine_mean, 7),
                "cosine_min": round(self.cosine_min, 7), "threshold": self.threshold,
                "recall_at_1": None if self.recall_at_1 is None else round(self.recall_at_1, 4),
                "recall_drop_points": None if self.recall_drop_points is None else round(self.recall_drop_points, 2),
                "max_recall_drop_points": None if self.max_recall_drop_points is None
                else round(self.max_recall_drop_points, 2), "recall_gate": self.recall_gate,
                "passed": self.passed, "failures": self.failures}


def judge(key: str, runtime: str, embeddings: np.ndarray, reference: np.ndarray, threshold: float,
          product_ids: list[str] | None, domains: list[str] | None, reference_recall: float | None,
          max_drop: float | None) -> ArtefactParity:
    """Cosine floor against PyTorch, and (``max_drop`` not None) the paired Recall@1 gate.

    The Recall@1 gate compares per-query hits of the artefact with PyTorch's on the same queries
    (recall_gate.py): it fails only when a drop beyond ``max_drop`` points is statistically
    supported, never on the noise of a few flipped queries.
    """
    from .recall_gate import paired_gate, query_hits

    cos = cosines(embeddings, reference)
    r1 = recall_at_1(embeddings, product_ids, domains)
    drop = None if r1 is None or reference_recall is None else (reference_recall - r1) * 100.0
    failures: list[str] = []
    if not np.all(np.isfinite(embeddings)):
        failures.append("non-finite embeddings")
    if float(cos.mean()) < threshold:
        failures.append(f"mean cosine {cos.mean():.6f} < {threshold}")
    gate = None
    if max_drop is not None and r1 is not None and np.all(np.isfinite(embeddings)):
        ref_hits = query_hits(reference, product_ids, domains)
        gate = paired_gate(ref_hits, query_hits(embeddings, product_ids, domains), margin_points=max_drop)
        if gate.failed:
            failures.append(gate.message())
    return ArtefactParity(key, runtime, float(cos.mean()), float(cos.min()), threshold, r1, drop,
                          max_drop, not failures, failures, len(embeddings), reference_recall,
                          None if gate is None else gate.to_dict())


# ------------------------------------------------------------------------------ clients
def write_input_size_pngs(images_nchw: np.ndarray, folder: Path) -> tuple[list[Path], np.ndarray]:
    """S x S 8-bit PNGs of preprocessed images, and the exact [0, 1] NHWC tensors they hold."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, tensors = [], []
    for i, image in enumerate(images_nchw):
        pixels = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        path = folder / f"crop_{i:04d}.png"
        Image.fromarray(pixels, "RGB").save(path)
        paths.append(path)
        tensors.append(pixels.astype(np.float32) / 255.0)
    return paths, np.stack(tensors)


def centre_crop_box(height: int, width: int, spec: PreprocessingSpec) -> tuple[float, float, float, float]:
    """Our centre crop in the original photo's pixel coordinates: (left, top, width, height)."""
    new_h, new_w = resized_size(height, width, spec.resize_shorter)
    size = spec.input_size
    top, left = (new_h - size) // 2, (new_w - size) // 2
    sy, sx = height / new_h, width / new_w
    return left * sx, top * sy, size * sx, size * sy


def enlarge_copies(paths: list[Path], folder: Path, shorter: int = DRIFT_SHORTER_SIDE) -> list[Path]:
    """Copies of the photos resized (Lanczos) to a ``shorter``-px shorter side, as PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, path in enumerate(paths):
        rgb = (np.clip(load_rgb(path), 0, 1) * 255.0 + 0.5).astype(np.uint8)
        img = Image.fromarray(rgb, "RGB")
        w, h = img.size
        scale = shorter / min(w, h)
        img = img.resize((max(shorter, math.floor(w * scale + 0.5)), max(shorter, math.floor(h * scale + 0.5))),
                         Image.Resampling.LANCZOS)
        target = folder / f"large_{i:04d}.png"
        img.save(target)
        out.append(target)
    return out


def rois_for(paths: list[Path], spec: PreprocessingSpec) -> tuple[list[list[float]], list[list[float]]]:
    """Centre-crop ROIs: Task Library boxes in pixels, MediaPipe rects normalised to [0, 1]."""
    boxes, rects = [], []
    for path in paths:
        with Image.open(path) as img:
            from PIL import ImageOps

            w, h = ImageOps.exif_transpose(img).size
        left, top, cw, ch = centre_crop_box(h, w, spec)
        boxes.append([round(left), round(top), round(cw), round(ch)])
        rects.append([left / w, top / h, (left + cw) / w, (top + ch) / h])
    return boxes, rects


def our_embeddings(tflite: Path, paths: list[Path], spec: PreprocessingSpec) -> np.ndarray:
    from .runtimes import run_tflite

    images = np.concatenate([preprocess_image(p, spec, "NHWC") for p in paths])
    return run_tflite(tflite, images)


def summarise(values: np.ndarray) -> dict:
    return {"mean": round(float(values.mean()), 6), "min": round(float(values.min()), 6),
            "count": int(len(values))}
