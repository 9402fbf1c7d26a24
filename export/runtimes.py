"""Run an exported artefact with the runtime a phone or server would use, on preprocessed images.

- ONNX: onnxruntime (CPU execution provider), NCHW batch.
- TFLite: the ``ai-edge-litert`` interpreter (XNNPACK), one NHWC image at a time.
- Core ML: our MIL evaluator on Linux (see coreml/mil_evaluator.py); on macOS also Core ML's own
  ``predict`` on 8-bit RGB images.
All take float32 NCHW RGB [0, 1] arrays from :func:`preprocess_image` and return the embeddings.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
from PIL import Image

from .model_info import INPUT_NAME, OUTPUT_NAME


def run_onnx(path: Path, images_nchw: np.ndarray, threads: int = 1) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    outs = [session.run([OUTPUT_NAME], {INPUT_NAME: images_nchw[i:i + 16]})[0]
            for i in range(0, len(images_nchw), 16)]
    return np.concatenate(outs).astype(np.float32)


def run_tflite(path: Path, images_nhwc: np.ndarray, threads: int = 1) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    result = []
    for image in images_nhwc:
        interp.set_tensor(inp["index"], image[None].astype(np.float32))
        interp.invoke()
        result.append(interp.get_tensor(out["index"])[0].copy())
    return np.stack(result).astype(np.float32)


def run_coreml_mil(path: Path, images_nchw: np.ndarray) -> np.ndarray:
    from .coreml.mil_evaluator import MILProgram

    return MILProgram(path).embed_images(images_nchw)


def coreml_predict_available() -> bool:
    return platform.system() == "Darwin"


def run_coreml_predict(path: Path, images_nchw: np.ndarray) -> np.ndarray:
    """Core ML's own prediction (macOS only) on the images rounded to 8-bit RGB."""
    import coremltools as ct

    model = ct.models.MLModel(str(path))
    outs = []
    for image in images_nchw:
        pixels = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        result = model.predict({INPUT_NAME: Image.fromarray(pixels, "RGB")})
        outs.append(np.asarray(result[OUTPUT_NAME], dtype=np.float32).reshape(-1))
    return np.stack(outs)


def nchw_to_nhwc(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))
