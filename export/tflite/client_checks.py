"""The TFLite file through two real clients: the Task Library and MediaPipe ``ImageEmbedder``.

Each client runs in its own virtualenv (tflite/side_envs.py) on image files, exactly as an app would
hand it a decoded photo. See parity.py for what is compared with what, and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepproduct.sdk.preprocessing import PreprocessingSpec

from ..parity import (
    CLIENT_AGREEMENT_THRESHOLD,
    DRIFT_SHORTER_SIDE,
    cosines,
    enlarge_copies,
    our_embeddings,
    rois_for,
    summarise,
    write_input_size_pngs,
)
from ..runtimes import run_tflite
from .side_envs import MEDIAPIPE, TFLITE_SUPPORT, SideEnv, run_client

#: Drift is measured, not gated: a sample of the parity photos is enough.
DRIFT_IMAGES = 64

CLIENTS: dict[str, tuple[SideEnv, str, str]] = {
    "task_library": (TFLITE_SUPPORT, "taskslib_embed.py", "tflite-support"),
    "mediapipe": (MEDIAPIPE, "mediapipe_embed.py", "mediapipe"),
}


def _client_embed(name: str, model: Path, images: list[Path], rois: list | None, workdir: Path) -> np.ndarray:
    env, script, _ = CLIENTS[name]
    out = workdir / f"{name}_{len(list(workdir.glob(name + '_*.npz')))}.npz"
    run_client(env, script, {"model": str(model), "images": [str(p) for p in images],
                             "rois": rois, "out": str(out)}, workdir)
    return np.load(out)["embeddings"]


def check_clients(tflite: Path, images_nchw: np.ndarray, photos: list[Path], spec: PreprocessingSpec,
                  workdir: Path, gate: bool = True, drift: bool = True) -> dict:
    """Agreement at the input size (gated when ``gate``) and drift on photos (measured)."""
    workdir.mkdir(parents=True, exist_ok=True)
    crops, crop_tensors = write_input_size_pngs(images_nchw, workdir / "crops")
    reference = run_tflite(tflite, crop_tensors)
    results: dict = {"threshold": CLIENT_AGREEMENT_THRESHOLD, "gated": gate}
    failures: list[str] = []
    drift_sets: dict[str, tuple[list[Path], np.ndarray, tuple[list, list]]] = {}
    if drift and photos:
        photos = photos[:DRIFT_IMAGES]
        large = enlarge_copies(photos, workdir / "large")
        for label, paths in (("native", photos), (f"shorter_{DRIFT_SHORTER_SIDE}px", large)):
            drift_sets[label] = (paths, our_embeddings(tflite, paths, spec), rois_for(paths, spec))
    for name, (_env, _script, package) in CLIENTS.items():
        entry: dict = {"version": CLIENTS[name][0].version(package)}
        agree = cosines(_client_embed(name, tflite, crops, None, workdir), reference)
        entry["input_size"] = summarise(agree)
        if gate and float(agree.mean()) < CLIENT_AGREEMENT_THRESHOLD:
            failures.append(f"{name}: mean cosine {agree.mean():.6f} at the input size < {CLIENT_AGREEMENT_THRESHOLD}")
        for label, (paths, ours, (boxes, rects)) in drift_sets.items():
            rois = boxes if name == "task_library" else rects
            entry[f"drift_{label}"] = summarise(cosines(_client_embed(name, tflite, paths, rois, workdir), ours))
        results[name] = entry
    results["passed"] = not failures
    results["failures"] = failures
    return results
