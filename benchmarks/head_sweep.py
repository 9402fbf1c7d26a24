"""``dp-bench head-sweep``: what a head that whitens less would buy in int8 cosine, and cost in Recall@1.

Why this exists: the shipped head (training/models/projection.py) is a PCA of the unit-normalised
pooled features with each axis divided by std ** 0.5; the whitening lifts weak axes and the int8
noise in them. Whether a milder head is worth it is a trade between int8 cosine and retrieval on
real photos, so this refits the head offline -- from the fp32 ONNX artefact's pooled features of
the training images, as ``dp-train`` fits it from PyTorch's -- for a few settings, and scores each
with the pooled features of the fp32 and the int8 ONNX graphs (the head itself stays float in every
int8 export). Axis i of the kept ``dim`` is divided by ``(var_i + shrink * mean(var)) ** (power / 2)``.
numpy + onnxruntime; Recall@1 is the SDK's one definition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from deepproduct.sdk.dataset_manifest import read_dataset_manifest
from deepproduct.sdk.metrics import hits_at_k
from deepproduct.sdk.model_manifest import load_model_manifest
from deepproduct.sdk.preprocessing import preprocess_batch

from .int8_budget import BudgetError, onnx_pair

#: (dim, power, shrink): the shipped head first, then milder ones.
DEFAULT_HEADS: tuple[tuple[int, float, float], ...] = (
    (256, 0.5, 0.0), (256, 0.5, 0.3), (256, 0.5, 1.0), (256, 0.25, 0.0), (256, 0.0, 0.0), (128, 0.5, 0.0))


def with_pooled_output(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """A copy of ``model`` that also outputs the head's input (the normalised pooled features)."""
    import copy

    model = copy.deepcopy(model)
    constants = {i.name for i in model.graph.initializer}
    heads = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul")
             and any(i in constants for i in n.input)]
    if len(heads) != 1:
        raise BudgetError(f"expected one linear head (Gemm/MatMul with a constant weight), found {len(heads)}")
    pooled = next(i for i in heads[0].input if i not in constants)
    model.graph.output.append(onnx.helper.make_tensor_value_info(pooled, onnx.TensorProto.FLOAT, None))
    return model, pooled


def _pooled(model: onnx.ModelProto, images: np.ndarray, threads: int, batch: int = 32) -> np.ndarray:
    import onnxruntime as ort

    proto, name = with_pooled_output(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    return np.concatenate([session.run([name], {feed: images[i:i + batch]})[0].astype(np.float64)
                           for i in range(0, len(images), batch)])


def head_weight(train: np.ndarray, dim: int, power: float, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, dim x C weight) of the head refitted on ``train`` (N x C pooled features)."""
    if not 1 <= dim < len(train):
        raise BudgetError(f"a {dim}-d head needs more than {dim} training images, got {len(train)}")
    mu = train.mean(0)
    _, s, vt = np.linalg.svd(train - mu, full_matrices=False)
    var = (s[:dim] ** 2) / (len(train) - 1)
    return mu, vt[:dim] / ((var + shrink * var.mean()) ** (power / 2))[:, None]


def recall_at_1(emb: np.ndarray, products: np.ndarray, domains: np.ndarray) -> float:
    """Consumer-to-shop Recall@1: ``user`` images query the ``shop`` images (answerable queries only)."""
    queries, gallery = domains == "user", domains == "shop"
    answerable = queries & np.isin(products, products[gallery])
    top = np.argmax(emb[answerable] @ emb[gallery].T, axis=1)
    return float(hits_at_k(products[gallery][top][:, None], products[answerable], 1).mean())


def _split(manifest: str | Path, split: str, spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = read_dataset_manifest(manifest)
    rows = data.select(split=split)
    if not rows:
        raise BudgetError(f"{manifest}: no rows with split={split}")
    images = preprocess_batch([data.abspath(r) for r in rows], spec)
    return images, np.array([r.product_id for r in rows]), np.array([r.domain for r in rows])


def head_sweep(export_dir: str | Path, data: str | Path, transfer: str | Path | None = None,
               heads: tuple[tuple[int, float, float], ...] = DEFAULT_HEADS, threads: int = 2) -> dict[str, Any]:
    """Recall@1 (fp32 and int8 graphs) and int8 mean cosine per head, on ``data``'s test split and
    (if given) ``transfer``'s; the heads are fitted on ``data``'s training split."""
    manifest = load_model_manifest(export_dir)
    fp32, int8 = onnx_pair(Path(export_dir), manifest)
    images, _, _ = _split(data, "train", manifest.preprocessing)
    train = _pooled(fp32, images, threads)
    sets = {"held_out": _split(data, "test", manifest.preprocessing)}
    if transfer:
        sets["transfer"] = _split(transfer, "test", manifest.preprocessing)
    pooled = {k: (_pooled(fp32, v[0], threads), _pooled(int8, v[0], threads), v[1], v[2]) for k, v in sets.items()}
    rows = []
    for dim, power, shrink in heads:
        mu, weight = head_weight(train, dim, power, shrink)
        row: dict[str, Any] = {"dim": dim, "power": power, "shrink": shrink}
        for name, (pf, pq, products, domains) in pooled.items():
            ef, eq = ((p - mu) @ weight.T for p in (pf, pq))
            ef /= np.linalg.norm(ef, axis=1, keepdims=True)
            eq /= np.linalg.norm(eq, axis=1, keepdims=True)
            row[name] = {"recall@1_fp32": recall_at_1(ef, products, domains),
                         "recall@1_int8": recall_at_1(eq, products, domains),
                         "mean_cos": float((ef * eq).sum(1).mean()), "images": len(products)}
        rows.append(row)
    return {"export": str(export_dir), "data": str(data), "transfer": str(transfer) if transfer else None,
            "train_images": len(train), "heads": rows}


def sweep_table(result: dict[str, Any]) -> str:
    sets = [k for k in ("held_out", "transfer") if k in result["heads"][0]]
    head = "| dim | power | shrink | " + " | ".join(f"{s} R@1 fp32 / int8 | {s} int8 cos" for s in sets) + " |"
    lines = [f"head sweep: {result['export']} (heads fitted on {result['train_images']} training images)", "",
             head, "| " + " | ".join(["---"] * (3 + 2 * len(sets))) + " |"]
    for r in result["heads"]:
        cells = [f"{100 * r[s]['recall@1_fp32']:.2f} / {100 * r[s]['recall@1_int8']:.2f} | {r[s]['mean_cos']:.5f}"
                 for s in sets]
        lines.append(f"| {r['dim']} | {r['power']} | {r['shrink']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
