"""``dp-bench accuracy``: does each artefact still retrieve as well as the model it came from?

Every artefact that runs here embeds the held-out split through the SDK's preprocessing (the
phones' one definition), so the only difference between artefacts is the conversion and
quantisation. Metrics follow docs/method.md section 5 (consumer-to-shop Recall@1/5 and MAP@R, via
``deepproduct.training.eval.metrics``, the same code the training report uses); the mean cosine
to the PyTorch embeddings of the same tensors isolates conversion error from retrieval effects.
An artefact more than ``flag_points`` Recall@1 points below its format's fp32 artefact (or
the reference when that format has no fp32) is flagged.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deepproduct.sdk.dataset_manifest import read_dataset_manifest
from deepproduct.sdk.preprocessing import PreprocessingSpec, preprocess_image
from deepproduct.training.progress import progress_bar  # tqdm on a terminal, a few lines in a log

from .machine import describe_host, usable_cores
from .model_bench import select
from .runners import ArtefactRef, NotRunnableHere, discover_artefacts, embed, make_runner
from .schema import make_record, new_run_id

FLAG_POINTS = 1.0


def preprocess_split(paths: list[Path], spec: PreprocessingSpec, workdir: Path, progress: bool = True
                     ) -> np.ndarray:
    """All images as one NCHW float32 array, memory-mapped in ``workdir`` (a 224 px split of a
    thousand images is 600 MB; the runners read it chunk by chunk)."""
    size = spec.input_size
    arr = np.lib.format.open_memmap(workdir / "inputs.npy", mode="w+", dtype=np.float32,
                                    shape=(len(paths), 3, size, size))
    for i, p in enumerate(progress_bar(paths, desc="preprocess", disable=not progress, unit="img")):
        arr[i] = preprocess_image(p, spec, "NCHW")[0]
    arr.flush()
    return arr


def retrieval_scores(emb: np.ndarray, labels: np.ndarray, is_query: np.ndarray) -> dict[str, float]:
    """Recall@1/5 and MAP@R: consumer-to-shop when both domains exist, else leave-one-out."""
    from deepproduct.training.eval.metrics import leave_one_out, map_at_r, recall_at_k

    if is_query.any() and (~is_query).any():
        out = recall_at_k(emb[is_query], labels[is_query], emb[~is_query], labels[~is_query], (1, 5))
        out.update(map_at_r(emb[is_query], labels[is_query], emb[~is_query], labels[~is_query]))
        out.update(protocol="consumer-to-shop", queries=int(is_query.sum()), gallery=int((~is_query).sum()))
    else:
        out = leave_one_out(emb, labels, (1, 5))
        out.update(protocol="leave-one-out", queries=len(emb), gallery=len(emb))
    return out


def mean_cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and minimum row-wise cosine (the exporter's own parity measure)."""
    from deepproduct.export.parity import cosines

    cos = cosines(a, b)
    return float(cos.mean()), float(cos.min())


def pick_reference(keys: list[str]) -> str | None:
    """PyTorch eager when present, else ONNX fp32, else any fp32."""
    for want in ("pytorch/fp32", "onnx/fp32", "tflite/fp32"):
        if want in keys:
            return want
    return next((k for k in keys if k.endswith("/fp32")), None)


def bench_accuracy(export_dir: str | os.PathLike, data: str | os.PathLike, *,
                   checkpoint: str | os.PathLike | None = None, split: str = "test", batch: int = 32,
                   threads: int | None = None, only: Iterable[str] | None = None,
                   flag_points: float = FLAG_POINTS, run_id: str | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    run_id = run_id or new_run_id()
    threads = threads or usable_cores()
    manifest, refs = discover_artefacts(export_dir, checkpoint)
    refs = select(refs, only)
    dataset = read_dataset_manifest(data)
    rows = dataset.select(split=split)
    if not rows:
        raise ValueError(f"{data}: no rows in split {split!r}")
    products = {p: i for i, p in enumerate(sorted({r.product_id for r in rows}))}
    labels = np.array([products[r.product_id] for r in rows])
    is_query = np.array([r.domain == "user" for r in rows])
    records: list[dict[str, Any]] = []
    embeddings: dict[str, np.ndarray] = {}
    runtimes: dict[str, ArtefactRef] = {}
    with tempfile.TemporaryDirectory(prefix="dp-bench-acc-") as tmp:
        x = preprocess_split([dataset.abspath(r) for r in rows], manifest.preprocessing, Path(tmp), progress)
        for ref in progress_bar(refs, desc="embed artefacts", disable=not progress, unit="artefact"):
            try:
                runner = make_runner(ref, threads)
            except NotRunnableHere as exc:
                records.append(make_record("skipped", machine=describe_host(), run_id=run_id,
                                           artefact=ref.key, what="accuracy", reason=str(exc)))
                continue
            embeddings[ref.key] = embed(runner, x, batch)
            runtimes[ref.key] = ref
            del runner
        del x
    reference = pick_reference(list(embeddings))
    scores = {key: retrieval_scores(emb, labels, is_query) for key, emb in embeddings.items()}
    for key, emb in embeddings.items():
        ref = runtimes[key]
        fmt_fp32 = f"{ref.format}/fp32"
        baseline = fmt_fp32 if fmt_fp32 in scores else reference
        cos, cos_min = mean_cosine(emb, embeddings[reference]) if reference else (None, None)
        drop = 100.0 * (scores[baseline]["recall@1"] - scores[key]["recall@1"]) if baseline else 0.0
        s = scores[key]
        records.append(make_record(
            "accuracy", machine=describe_host(), run_id=run_id, artefact=key, format=ref.format,
            precision=ref.precision, runtime=ref.runtime, split=split, protocol=s["protocol"],
            **{"recall@1": s["recall@1"], "recall@5": s["recall@5"], "map@r": s["map@r"]},
            queries=s["queries"], gallery=s["gallery"], reference=reference or "",
            cosine_to_reference=cos, min_cosine_to_reference=cos_min, recall1_baseline=baseline or "",
            recall1_drop_points=round(drop, 3), flagged=bool(drop > flag_points),
            model=manifest.model_name, dataset=str(data)))
    return records
