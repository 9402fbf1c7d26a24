"""Embed images with MediaPipe Tasks' ImageEmbedder.

Runs inside .venv-mediapipe, driven by deepproduct.export.parity. Usage:

    python mediapipe_embed.py REQUEST.json REPLY.json

Request: {"model": path, "images": [path, ...], "rois": [[left, top, right, bottom] | null, ...]
(optional, normalised to [0, 1]), "out": path.npz}. MediaPipe reads the model's metadata for the
normalisation (it refuses per-channel mean/std, which is why ours lives in the graph), resizes
for itself, and can be limited to a region of interest (our centre crop).
"""

import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.components.containers import rect
from mediapipe.tasks.python.core import base_options as base_options_lib
from mediapipe.tasks.python.vision.core import image_processing_options as ipo


def main(request_path: str, reply_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        req = json.load(f)
    options = vision.ImageEmbedderOptions(
        base_options=base_options_lib.BaseOptions(model_asset_path=req["model"]),
        l2_normalize=False, quantize=False)
    rois = req.get("rois") or [None] * len(req["images"])
    out = []
    with vision.ImageEmbedder.create_from_options(options) as embedder:
        for path, roi in zip(req["images"], rois, strict=False):
            image = mp.Image.create_from_file(path)
            if roi is None:
                result = embedder.embed(image)
            else:
                region = rect.RectF(left=roi[0], top=roi[1], right=roi[2], bottom=roi[3])
                result = embedder.embed(image, ipo.ImageProcessingOptions(region_of_interest=region))
            out.append(np.asarray(result.embeddings[0].embedding, dtype=np.float32))
    np.savez(req["out"], embeddings=np.stack(out))
    with open(reply_path, "w", encoding="utf-8") as f:
        json.dump({"count": len(out), "dim": int(out[0].shape[0]) if out else 0}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
