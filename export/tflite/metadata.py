"""Write and check TFLite metadata through the isolated tflite-support virtualenv.

The metadata makes the .tflite file drop into the TFLite Task Library and MediaPipe
``ImageEmbedder`` unchanged: an RGB image input with normalisation mean 0 / std 255 (the graph
takes [0, 1] and normalises itself -- MediaPipe refuses per-channel mean/std), a named output,
and the model's name, version, author and licence. The writer runs in .venv-tflite-support
(protobuf<4); the file is read back with the metadata displayer and checked here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import ExportError
from ..model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo
from .side_envs import TFLITE_SUPPORT, run_client

#: The input normalisation the metadata declares: mean 0 / std 255, i.e. "uint8 pixels / 255".
#: The graph itself takes [0, 1] and applies the model's mean/std inside, so the clients only
#: have to scale; MediaPipe refuses per-channel mean/std. The one place these numbers live: the
#: writer (run in the side venv) gets them in its request, the check and the manifest read them.
NORMALISATION: dict[str, tuple[float, ...]] = {"mean": (0.0,), "std": (255.0,)}


def write_metadata(path: Path, info: ModelInfo, precision: str, workdir: Path) -> dict:
    """Populate ``path`` in place with metadata; returns the metadata JSON read back."""
    workdir.mkdir(parents=True, exist_ok=True)
    staged = workdir / f"{path.stem}.nometa.tflite"
    shutil.copyfile(path, staged)
    out = workdir / f"{path.stem}.meta.tflite"
    description = info.description + " Manifest essentials: " + json.dumps(info.essentials(), sort_keys=True)
    reply = run_client(TFLITE_SUPPORT, "write_tflite_metadata.py", {
        "model_in": str(staged), "model_out": str(out),
        "name": f"{info.name} ({precision})", "version": info.version, "description": description,
        "author": info.author, "license": info.license,
        "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
        "norm_mean": list(NORMALISATION["mean"]), "norm_std": list(NORMALISATION["std"]),
        "input_description": f"RGB image, {info.input_size}x{info.input_size}, float32 in [0, 1] (NHWC)",
        "output_description": f"L2-normalised {info.embedding_dim}-d product embedding",
    }, workdir)
    check_metadata(reply["metadata_json"], info)
    shutil.move(str(out), str(path))
    staged.unlink(missing_ok=True)
    return reply["metadata_json"]


def check_metadata(md: dict, info: ModelInfo) -> None:
    """The fields the two clients rely on, read back from the written file."""
    problems: list[str] = []
    graph = (md.get("subgraph_metadata") or [{}])[0]
    inputs = graph.get("input_tensor_metadata") or []
    outputs = graph.get("output_tensor_metadata") or []
    if len(inputs) != 1 or len(outputs) != 1:
        problems.append(f"expected 1 input and 1 output metadata, got {len(inputs)}/{len(outputs)}")
    else:
        props = (inputs[0].get("content") or {}).get("content_properties") or {}
        if props.get("color_space") != "RGB":
            problems.append(f"input colour space {props.get('color_space')!r}, expected RGB")
        norm = next((p.get("options") for p in inputs[0].get("process_units") or []
                     if p.get("options_type") == "NormalizationOptions"), None)
        want = {k: list(v) for k, v in NORMALISATION.items()}
        if not norm or norm.get("mean") != want["mean"] or norm.get("std") != want["std"]:
            problems.append(f"input normalisation {norm}, expected mean {want['mean']} / std {want['std']}")
        if outputs[0].get("name") != OUTPUT_NAME:
            problems.append(f"output named {outputs[0].get('name')!r}, expected {OUTPUT_NAME!r}")
    for key, want in (("author", info.author), ("license", info.license), ("version", info.version)):
        if md.get(key) != want:
            problems.append(f"{key} {md.get(key)!r}, expected {want!r}")
    if problems:
        raise ExportError("TFLite metadata check failed: " + "; ".join(problems))
