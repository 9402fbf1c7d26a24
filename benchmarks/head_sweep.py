"""``dp-bench head-sweep``: what a head that whitens less would buy in int8 cosine, and cost in Recall@1.

Why this exists: the shipped head (training/models/projection.py) is a PCA of the unit-normalised
pooled features with each axis divided by std ** 0.5; the whitening lifts weak axes and the int8
noise in them. Whether a milder head is worth it is a trade between int8 cosine and retrieval on
real photos, so this refits the head offline -- from the fp32 ONNX artefact's pooled features of
the training images, as ``dp-train`` fits it from PyTorch's -- for a few settings, and scores each
with the pooled features of the fp32 and the int8 ONNX graphs (the head itself stays float in every
int8 export). Axis i of the kept ``dim`` is divided by ``(var_i + shrink * mean(var)) ** (power / 2)``.
Recall@1 is ranked and scored as the export gate does (``export.parity.recall_at_1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from deepproduct.export.parity import recall_at_1 as parity_recall_at_1
from deepproduct.sdk.model_manifest import load_model_manifest

from .int8_budget import BudgetError, onnx_pair, onnx_session, run_session, split_images

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


def head_weight(train: np.ndarray, dim: int, power: float, shrink: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, dim x C weight) of the head refitted on ``train`` (N x C pooled features)."""
    if not 1 <= dim < len(train):
        raise BudgetError(f"a {dim}-d head needs more than {dim} training images, got {len(train)}")
    mu = train.mean(0)
    _, s, vt = np.linalg.svd(train - mu, full_matrices=False)
    var = (s[:dim] ** 2) / (len(train) - 1)
    return mu, vt[:dim] / ((var + shrink * var.mean()) ** (power / 2))[:, None]


def recall_at_1(emb: np.ndarray, products: np.ndarray, domains: np.ndarray) -> float:
    """Consumer-to-shop Recall@1 over the answerable ``user`` queries (a shop image of their product
    exists), ranked and scored as the export gate does (``export.parity.recall_at_1``)."""
    gallery = domains == "shop"
    keep = gallery | np.isin(products, products[gallery])
    return parity_recall_at_1(emb[keep], products[keep].tolist(), domains[keep].tolist())


def head_sweep(export_dir: str | Path, data: str | Path, transfer: str | Path | None = None,
               heads: tuple[tuple[int, float, float], ...] = DEFAULT_HEADS, threads: int = 2) -> dict[str, Any]:
    """Recall@1 (fp32 and int8 graphs) and int8 mean cosine per head, on ``data``'s test split and
    (if given) ``transfer``'s; the heads are fitted on ``data``'s training split."""
    manifest = load_model_manifest(export_dir)
    # One session per graph, optimised as shipped: no surgery here, only an extra output.
    (fp32, fp32_pooled), (int8, int8_pooled) = (with_pooled_output(m) for m in onnx_pair(Path(export_dir), manifest))
    fp32_session, int8_session = onnx_session(fp32, threads, optimise=True), onnx_session(int8, threads, optimise=True)

    def pooled(session, output: str, images: np.ndarray) -> np.ndarray:
        return run_session(session, images, output).astype(np.float64)

    train = pooled(fp32_session, fp32_pooled, split_images(data, "train", manifest.preprocessing)[0])
    sets = {"held_out": split_images(data, "test", manifest.preprocessing)}
    if transfer:
        sets["transfer"] = split_images(transfer, "test", manifest.preprocessing)
    pooled_sets = {k: (pooled(fp32_session, fp32_pooled, images), pooled(int8_session, int8_pooled, images),
                       products, domains) for k, (images, products, domains) in sets.items()}
    rows = []
    for dim, power, shrink in heads:
        mu, weight = head_weight(train, dim, power, shrink)
        row: dict[str, Any] = {"dim": dim, "power": power, "shrink": shrink}
        for name, (pf, pq, products, domains) in pooled_sets.items():
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
