"""Embed images with the TFLite Task Library's ImageEmbedder (tflite-support 0.4.4).

Runs inside .venv-tflite-support, driven by deepproduct.export.parity. Usage:

    python taskslib_embed.py REQUEST.json REPLY.json

Request: {"model": path, "images": [path, ...], "rois": [[x, y, w, h] | null, ...] (optional),
"out": path.npz}. The Task Library decodes the file, resizes to the model's input size with
plain bilinear (no antialiasing) and normalises with the model's metadata (mean 0, std 255) --
exactly what an Android app using it would do. An ROI restricts it to our centre crop.
"""

import json
import sys

import numpy as np
from tflite_support.task import core, processor, vision


def main(request_path: str, reply_path: str) -> None:
    with open(request_path, encoding="utf-8") as f:
        req = json.load(f)
    options = vision.ImageEmbedderOptions(
        base_options=core.BaseOptions(file_name=req["model"], num_threads=1),
        embedding_options=processor.EmbeddingOptions(l2_normalize=False, quantize=False))
    embedder = vision.ImageEmbedder.create_from_options(options)
    rois = req.get("rois") or [None] * len(req["images"])
    out = []
    for path, roi in zip(req["images"], rois, strict=False):
        image = vision.TensorImage.create_from_file(path)
        if roi is None:
            result = embedder.embed(image)
        else:
            box = processor.BoundingBox(origin_x=int(roi[0]), origin_y=int(roi[1]),
                                        width=int(roi[2]), height=int(roi[3]))
            result = embedder.embed(image, box)
        vec = np.asarray(result.embeddings[0].feature_vector.value, dtype=np.float32)
        out.append(vec)
    np.savez(req["out"], embeddings=np.stack(out))
    with open(reply_path, "w", encoding="utf-8") as f:
        json.dump({"count": len(out), "dim": int(out[0].shape[0]) if out else 0}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
