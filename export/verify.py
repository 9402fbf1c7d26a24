"""Parity of every artefact in an export folder, by real runtimes -- shared by export and verify.

``measure`` runs each artefact on the parity set and judges it (variants.py thresholds);
``verify_folder`` is ``dp-export verify DIR``: manifest schema and hashes, Core ML structure,
then ``measure``. On macOS it also runs Core ML's own ``predict``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepproduct.sdk.model_manifest import load_model_manifest
from deepproduct.sdk.preprocessing import PreprocessingSpec

from . import parity_set as ps
from .calibration import ImageSet, whole_product_indices
from .errors import ExportError
from .parity import ArtefactParity, judge, recall_at_1
from .runtimes import (
    coreml_predict_available,
    nchw_to_nhwc,
    run_coreml_mil,
    run_coreml_predict,
    run_onnx,
    run_tflite,
)
from .thresholds import COSINE_THRESHOLDS, MAX_RECALL_DROP_POINTS

Say = Callable[[str], None]


@dataclass
class ArtefactSpec:
    file: str
    format: str
    precision: str

    @property
    def key(self) -> str:
        return f"{self.format}/{self.precision}"


@dataclass
class ParityReport:
    reference_recall: float | None
    images: int
    products: int | None
    queries: int
    gallery: int
    results: dict[str, list[ArtefactParity]] = field(default_factory=dict)
    clients: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (not self.problems and all(r.passed for rs in self.results.values() for r in rs)
                and all(c.get("passed", True) for c in self.clients.values()))

    def failures(self) -> list[str]:
        out = list(self.problems)
        for key, rs in self.results.items():
            out += [f"{key} [{r.runtime}]: {f}" for r in rs for f in r.failures]
        for key, c in self.clients.items():
            out += [f"{key} clients: {f}" for f in c.get("failures", [])]
        return out

    def table(self) -> str:
        rows = [("artefact", "runtime", "images", "cos mean", "cos min", "threshold", "R@1 (ref)", "drop", "ok")]
        rows.append(("pytorch/fp32", "torch (reference)", str(self.images), "1", "1", "-",
                     _fmt(self.reference_recall), "-", "-"))
        for key, rs in self.results.items():
            for r in rs:
                rows.append((key, r.runtime, str(r.images), f"{r.cosine_mean:.6f}", f"{r.cosine_min:.6f}",
                             str(r.threshold), f"{_fmt(r.recall_at_1)} ({_fmt(r.reference_recall_at_1)})",
                             "-" if r.recall_drop_points is None else f"{r.recall_drop_points:.1f}",
                             "yes" if r.passed else "NO"))
        for key, c in self.clients.items():
            for name in ("task_library", "mediapipe"):
                if name in c:
                    s = c[name]["input_size"]
                    rows.append((key, f"{name} @ input size", str(s["count"]), f"{s['mean']:.6f}",
                                 f"{s['min']:.6f}", str(c["threshold"]) if c.get("gated") else "(measured)",
                                 "-", "-", "yes" if c.get("passed") else "NO"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


#: The numpy MIL evaluator costs ~0.5-1 s per 224-px image: Core ML runs on a whole-product subset.
COREML_PARITY_IMAGES = 48
#: The client checks prove the metadata / layout / colour order are read as intended, not a
#: statistic: the first 256 parity images are plenty (the parity set is the whole held-out split).
CLIENT_IMAGES = 256


def measure(folder: Path, artefacts: list[ArtefactSpec], pset: ps.ParitySet, spec: PreprocessingSpec,
            say: Say, clients: bool = True, workdir: Path | None = None,
            coreml_images: int = COREML_PARITY_IMAGES) -> ParityReport:
    all_images = pset.tensors(spec)
    all_reference = pset.reference
    all_labels = pset.images
    ref_recall = recall_at_1(all_reference, all_labels.product_ids, all_labels.domains)
    subset = (list(range(len(all_labels))) if len(all_labels) <= coreml_images
              else sorted(whole_product_indices(all_labels, coreml_images, seed=0)))
    domains = all_labels.domains or []
    report = ParityReport(ref_recall, len(all_images),
                          len(set(all_labels.product_ids)) if all_labels.product_ids else None,
                          domains.count("user"), domains.count("shop"))
    for a in artefacts:
        path = folder / a.file
        if a.format == "coreml":
            images, reference, labels = all_images[subset], all_reference[subset], all_labels.subset(subset)
        else:
            images, reference, labels = all_images, all_reference, all_labels
        set_recall = recall_at_1(reference, labels.product_ids, labels.domains)
        threshold = COSINE_THRESHOLDS[(a.format, a.precision)]
        # fp32 needs no Recall@1 gate (cosine 0.9999 says it all); palette6 is an optional size
        # variant whose Recall@1 is reported, not gated (the gate is for int8).
        max_drop = None if a.precision in ("fp32", "palette6") else MAX_RECALL_DROP_POINTS
        runs: list[tuple[str, Callable[[], np.ndarray]]] = []
        if a.format == "onnx":
            runs.append(("onnxruntime", lambda p=path, x=images: run_onnx(p, x)))
        elif a.format == "tflite":
            runs.append(("ai-edge-litert", lambda p=path, x=images: run_tflite(p, nchw_to_nhwc(x))))
        elif a.format == "coreml":
            runs.append(("mil-evaluator (numpy)", lambda p=path, x=images: run_coreml_mil(p, x)))
            if coreml_predict_available():
                runs.append(("coreml predict (macOS)", lambda p=path, x=images: run_coreml_predict(p, x)))
        elif a.format.startswith("executorch"):
            from .executorch.exporter import parity_runs

            runs += parity_runs(a.format, path, images)  # Core ML .pte off Apple: none (structural only)
        report.results[a.key] = []
        for runtime, fn in runs:
            say(f"  parity {a.key} via {runtime} on {len(images)} images")
            try:
                embeddings = fn()
            except Exception as exc:  # noqa: BLE001 - a runtime refusing the file is a failed check
                report.results[a.key].append(ArtefactParity(
                    a.key, runtime, float("nan"), float("nan"), threshold, None, None, max_drop, False,
                    [f"{runtime} could not run it: {type(exc).__name__}: {str(exc)[:300]}"], len(images)))
                continue
            r = judge(a.key, runtime, embeddings, reference, threshold, labels.product_ids, labels.domains,
                      set_recall, max_drop)
            report.results[a.key].append(r)
        if a.format == "tflite" and clients:
            from .tflite.client_checks import check_clients

            say(f"  clients {a.key}: Task Library + MediaPipe ImageEmbedder")
            work = workdir or Path(tempfile.mkdtemp(prefix="dp-clients-"))
            report.clients[a.key] = check_clients(
                path, images[:CLIENT_IMAGES], labels.paths[:CLIENT_IMAGES], spec, work / a.precision,
                gate=a.precision == "fp32", drift=a.precision == "fp32")
    return report


def verify_folder(folder: Path, say: Say, images: ImageSet | None = None, clients: bool = True
                  ) -> tuple[ParityReport, dict]:
    """``dp-export verify``: schema, hashes, Core ML structure, then parity by real runtimes."""
    from .manifest import check_hashes, validate

    manifest = load_model_manifest(folder)
    raw = manifest.raw
    # The parity set first: without one (and without --images) nothing can be verified, say so at once
    pset = ps.load(folder) if images is None else None
    problems: list[str] = []
    try:
        validate(raw)
    except Exception as exc:  # jsonschema.ValidationError: report the path and message
        problems.append(f"manifest does not match its schema: {getattr(exc, 'message', exc)}")
    say("checking sha256 of every file")
    problems += check_hashes(folder, raw)
    from .model_card import card_problems

    problems += card_problems(folder, raw)
    artefacts = [ArtefactSpec(a.file, a.format, a.precision) for a in manifest.artefacts]
    info = _info_from_manifest(raw)
    for a in artefacts:
        if a.format == "coreml":
            from .coreml.checks import check_package

            say(f"checking Core ML structure of {a.file}")
            try:
                check_package(folder / a.file, info, a.precision)
            except AssertionError as exc:
                problems.append(str(exc))
        elif a.format.startswith("executorch"):
            from .executorch.exporter import structure_problems

            say(f"checking ExecuTorch program structure of {a.file}")
            problems += structure_problems(folder / a.file, a.format, info.embedding_space_id)
    if images is not None:
        pset = ps.ParitySet(images, _reference_from_onnx(folder, manifest, images))
    with tempfile.TemporaryDirectory(prefix="dp-verify-") as tmp:
        report = measure(folder, artefacts, pset, manifest.preprocessing, say, clients, Path(tmp))
    report.problems = problems + report.problems
    return report, raw


def _reference_from_onnx(folder: Path, manifest, images: ImageSet) -> np.ndarray:
    """With user-supplied images there is no saved PyTorch reference: use the fp32 ONNX model."""
    try:
        onnx_fp32 = manifest.artefact("onnx", "fp32")
    except Exception as exc:
        raise ExportError("verify --images needs an onnx/fp32 artefact as the reference") from exc
    tensors = ps.ParitySet(images, None).tensors(manifest.preprocessing)
    return run_onnx(folder / onnx_fp32.file, tensors)


def _info_from_manifest(raw: dict):
    from .model_info import ModelInfo

    m = raw["model"]
    spec = PreprocessingSpec.from_dict(raw["preprocessing"])
    norm = raw["input"]["normalisation"]
    return ModelInfo(name=m["name"], version=str(m["version"]), backbone=m["backbone"],
                     embedding_dim=int(m["embedding_dim"]), input_size=spec.input_size,
                     embedding_space_id=raw["embedding_space_id"], mean=tuple(norm["mean"]),
                     std=tuple(norm["std"]), preprocessing=spec, author=m.get("author", ""),
                     license=m.get("license", ""), architecture=m.get("architecture", "embedding_net"))


def report_dict(report: ParityReport) -> dict:
    return json.loads(json.dumps({
        "passed": report.passed, "images": report.images, "products": report.products,
        "queries": report.queries, "gallery": report.gallery,
        "reference_recall_at_1": report.reference_recall,
        "artefacts": {k: [r.to_dict() for r in rs] for k, rs in report.results.items()},
        "clients": report.clients, "failures": report.failures(),
    }))
