"""``dp-export CHECKPOINT``: checkpoint in, a verified folder of mobile artefacts out.

Stages (one progress line each): load the checkpoint, gather calibration and parity images,
convert every requested format/precision, check Core ML structure and TFLite metadata, measure
parity with real runtimes, write the manifest. Everything is written into a temporary sibling
folder that is renamed onto ``--out`` only when every stage and every threshold passed, so a
failure never leaves a half-written output folder.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepproduct.sdk.preprocessing import PreprocessingSpec
from deepproduct.training.checkpoint import CheckpointError, embedding_space_id, load_model

from . import parity_set as ps
from .calibration import ImageSet, load_tensors, resolve_image_source, whole_product_indices
from .errors import ExportError, ParityError, UsageError
from .manifest import base_manifest, sha256_file, size_of, tool_versions, write_manifest
from .model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo
from .quiet import quiet
from .report import render as render_report
from .runtimes import nchw_to_nhwc
from .variants import COSINE_THRESHOLDS, MAX_RECALL_DROP_POINTS, Variant, plan_variants
from .verify import ArtefactSpec, measure, report_dict

Say = Callable[[str], None]
REPORT_FILE = "export_report.md"


@dataclass
class ExportOptions:
    checkpoint: Path
    out: Path
    formats: list[str]
    quantizations: list[str]
    calib: str | None = None
    image_size: int | None = None
    calib_count: int = 64
    parity_images: int = 256
    model_name: str | None = None
    model_version: str = "1"
    author: str = "DeepProduct"
    license: str = "Apache-2.0"
    overwrite: bool = False
    clients: bool = True
    seed: int = 0


@dataclass
class ExportResult:
    out: Path
    manifest: dict
    timings: dict[str, float] = field(default_factory=dict)
    table: str = ""


class _Stages:
    """Progress lines and timings; converter chatter goes to the log file."""

    def __init__(self, say: Say, log: Path) -> None:
        self.say = say
        self.log = log
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self._console = os.dup(2)  # progress from inside a quiet stage bypasses the redirect

    def note(self, message: str) -> None:
        os.write(self._console, (message + "\n").encode())

    def close(self) -> None:
        os.close(self._console)

    def run(self, name: str, fn: Callable[[], object]) -> object:
        self.say(f"[{len(self.timings) + 1}] {name} ...")
        start = time.perf_counter()
        try:
            with quiet(self.log, self.warnings):
                result = fn()
        except ExportError:
            raise
        except Exception as exc:  # a bug or an unforeseen converter failure: name the stage
            raise ExportError(f"stage '{name}' failed: {type(exc).__name__}: {str(exc).strip()[:800]}") from exc
        self.timings[name] = round(time.perf_counter() - start, 2)
        self.say(f"    done in {self.timings[name]:.1f} s")
        return result


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict]:
    try:
        model, cfg = load_model(path)
    except CheckpointError as exc:
        raise ExportError(f"cannot export: {exc}") from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ExportError(f"cannot export: {path}: unreadable checkpoint ({exc})") from exc
    return model.eval(), cfg


def model_info(model: torch.nn.Module, cfg: dict, opts: ExportOptions, size: int, ckpt: Path) -> ModelInfo:
    mean, std = model.normalisation
    name = opts.model_name or ckpt.name.removesuffix(".safetensors")
    return ModelInfo(name=name, version=opts.model_version, backbone=cfg["backbone"],
                     embedding_dim=int(cfg["embedding_dim"]), input_size=size,
                     embedding_space_id=embedding_space_id(model), mean=tuple(mean), std=tuple(std),
                     preprocessing=PreprocessingSpec.for_input_size(size), author=opts.author,
                     license=opts.license, architecture=cfg.get("architecture", "embedding_net"),
                     model_config=dict(cfg))


def _weights_file(path: Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def export(opts: ExportOptions, say: Say = print) -> ExportResult:
    """Run the whole export; raises :class:`ExportError` (nothing written at ``opts.out``)."""
    variants, skipped = plan_variants(opts.formats, opts.quantizations)
    out = opts.out.resolve()
    if out.exists() and not opts.overwrite:
        raise UsageError(f"{out} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    scratch = Path(tempfile.mkdtemp(prefix="dp-export-scratch-"))
    try:
        result = _export_into(tmp, scratch, opts, variants, skipped, say)
        _replace(tmp, out)
        result.out = out
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _export_into(tmp: Path, scratch: Path, opts: ExportOptions, variants: list[Variant],
                 skipped: list[str], say: Say) -> ExportResult:
    stages = _Stages(say, scratch / "export.log")
    try:
        return _run_stages(stages, tmp, scratch, opts, variants, skipped, say)
    finally:
        stages.close()


def _run_stages(stages: _Stages, tmp: Path, scratch: Path, opts: ExportOptions, variants: list[Variant],
                skipped: list[str], say: Say) -> ExportResult:
    for note in skipped:
        say(f"note: {note}")
    model, cfg = stages.run("load checkpoint", lambda: load_checkpoint(opts.checkpoint))
    size = opts.image_size or int(cfg.get("input_size") or model.input_size)
    if size < 32 or size > 1024:
        raise UsageError(f"--image-size {size} is outside 32..1024")
    info = model_info(model, cfg, opts, size, _weights_file(opts.checkpoint))
    spec = info.preprocessing

    source: ImageSet = stages.run("find calibration / parity images",
                                  lambda: resolve_image_source(opts.calib, scratch))
    need_calib = any(v.quantized for v in variants)
    calib = None
    if need_calib:
        calib_set, calib = stages.run(f"preprocess {opts.calib_count} calibration images",
                                      lambda: load_tensors(source, spec, opts.calib_count, seed=opts.seed))
        say(f"    {len(calib_set)} calibration images from {source.source}"
            + (f" ({len(calib_set.skipped)} unreadable skipped)" if calib_set.skipped else ""))
    parity_images, parity_tensors = stages.run(
        "preprocess parity images",
        lambda: load_tensors(source, spec, opts.parity_images, seed=opts.seed + 1, select=whole_product_indices))
    with torch.no_grad():
        reference = model(torch.from_numpy(parity_tensors)).numpy()
    pset = ps.save(tmp, parity_images, reference)

    written: list[Variant] = []
    extra: dict[str, dict] = {}
    by_format: dict[str, list[Variant]] = {}
    for v in variants:
        by_format.setdefault(v.format, []).append(v)
    for fmt, vs in by_format.items():
        if fmt == "onnx":
            extra.update(_export_onnx(model, info, vs, tmp, calib, stages))
        elif fmt == "tflite":
            extra.update(_export_tflite(model, info, vs, tmp, calib, stages, scratch))
        elif fmt == "coreml":
            extra.update(_export_coreml(model, info, vs, tmp, calib, stages))
        written += vs

    specs = [ArtefactSpec(v.file, v.format, v.precision) for v in written]
    report = stages.run("parity by real runtimes",
                        lambda: measure(tmp, specs, pset, spec, stages.note, opts.clients, scratch / "clients"))
    stages.warnings = _dedupe_warnings(stages.warnings)
    manifest = _build_manifest(info, cfg, opts, written, extra, report, stages, skipped, pset)
    manifest["artefacts"] = [dict(a, sha256="0" * 64, size_bytes=size_of(tmp / a["file"]))
                             for a in manifest["artefacts"]]
    (tmp / REPORT_FILE).write_text(render_report(manifest), encoding="utf-8")
    write_manifest(tmp, manifest)
    table = report.table()
    if not report.passed:
        raise ParityError("parity thresholds failed:\n  " + "\n  ".join(report.failures()) + "\n\n" + table)
    return ExportResult(tmp, manifest, stages.timings, table)


def _export_onnx(model, info: ModelInfo, vs: list[Variant], tmp: Path, calib: np.ndarray | None,
                 stages: _Stages) -> dict:
    from .onnx_export import convert_fp16, export_onnx, opset_of

    fp32_path = tmp / Variant("onnx", "fp32").file
    stages.run("onnx: export fp32 (torch.onnx dynamo)", lambda: export_onnx(model, info, fp32_path))
    extra = {}
    for v in vs:
        if v.precision == "fp16":
            stages.run("onnx: fp16", lambda v=v: convert_fp16(fp32_path, tmp / v.file))
        elif v.precision == "int8":
            from .onnx_quantize import quantize_int8

            stages.run("onnx: int8 static QDQ per-channel",
                       lambda v=v: quantize_int8(fp32_path, tmp / v.file, calib, info))
        extra[v.key] = {"opset": opset_of(tmp / v.file), "input_shape": ["N", 3, info.input_size, info.input_size]}
    if Variant("onnx", "fp32") not in vs:
        fp32_path.unlink()
    return extra


def _export_tflite(model, info: ModelInfo, vs: list[Variant], tmp: Path, calib: np.ndarray | None,
                   stages: _Stages, scratch: Path) -> dict:
    from .tflite_export import export_tflite_fp32, export_tflite_int8, op_names
    from .tflite_metadata import write_metadata

    extra = {}
    for v in vs:
        path = tmp / v.file
        if v.precision == "fp32":
            stages.run("tflite: convert fp32 (litert-torch, NHWC)",
                       lambda p=path: export_tflite_fp32(model, info.input_size, p))
        else:
            stages.run("tflite: int8 PT2E static per-channel",
                       lambda p=path: export_tflite_int8(model, info.input_size, nchw_to_nhwc(calib), p))
        md = stages.run(f"tflite: metadata ({v.precision}, tflite-support venv)",
                        lambda p=path, v=v: write_metadata(p, info, v.precision, scratch / "metadata"))
        ops = op_names(path)
        extra[v.key] = {"input_shape": [1, info.input_size, info.input_size, 3],
                        "op_counts": {o: ops.count(o) for o in sorted(set(ops))},
                        "metadata": {"name": md.get("name"), "version": md.get("version"),
                                     "author": md.get("author"), "license": md.get("license"),
                                     "normalisation": {"mean": [0.0], "std": [255.0]}, "colour_space": "RGB"}}
    return extra


def _export_coreml(model, info: ModelInfo, vs: list[Variant], tmp: Path, calib: np.ndarray | None,
                   stages: _Stages) -> dict:
    from .coreml_checks import check_package
    from .coreml_export import MINIMUM_TARGET, coremltools_warnings, export_coreml

    precisions = [v.precision for v in vs]
    written, selection = stages.run(
        f"coreml: convert {', '.join(precisions)} (coremltools, torch.export)",
        lambda: export_coreml(model, info, precisions, tmp, {v.precision: v.file for v in vs}, calib))
    if not any("not been tested" in w for w in stages.warnings):
        stages.warnings += coremltools_warnings()  # logged only at import: recomputed
    extra = {}
    for v in vs:
        facts = stages.run(f"coreml: structural checks {v.precision}",
                           lambda v=v: _checked(check_package, written[v.precision], info, v.precision))
        extra[v.key] = {"input_shape": [1, 3, info.input_size, info.input_size],
                        "minimum_deployment_target": MINIMUM_TARGET, "structure": facts}
        if v.precision in selection:
            extra[v.key]["kept_fp16"] = selection[v.precision]
    return extra


def _checked(check, path: Path, info: ModelInfo, precision: str) -> dict:
    try:
        return check(path, info, precision)
    except AssertionError as exc:
        raise ExportError(f"Core ML structural check failed: {exc}") from exc


def _dedupe_warnings(items: list[str]) -> list[str]:
    """Keep what a user of the artefacts should know (untested versions, user/runtime warnings)."""
    keep: list[str] = []
    for w in items:
        w = " ".join(w.split())[:300]
        noteworthy = "not been tested" in w or w.split(":")[0] in ("UserWarning", "RuntimeWarning")
        if noteworthy and w not in keep:
            keep.append(w)
    return keep[:40]


def _build_manifest(info: ModelInfo, cfg: dict, opts: ExportOptions, written: list[Variant], extra: dict,
                    report, stages: _Stages, skipped: list[str], pset: ps.ParitySet) -> dict:
    from .side_envs import MEDIAPIPE, TFLITE_SUPPORT

    parity = report_dict(report)
    weights = _weights_file(opts.checkpoint)
    manifest = base_manifest()
    manifest.update({
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": info.name, "version": info.version, "backbone": info.backbone,
                  "embedding_dim": info.embedding_dim, "architecture": info.architecture,
                  "pooling": cfg.get("pooling", "avg"), "input_size": info.input_size,
                  "trained_input_size": cfg.get("input_size"), "author": info.author,
                  "license": info.license, "description": info.description,
                  "pretrained_source": cfg.get("pretrained_source"),
                  "source_checkpoint": {"file": weights.name, "sha256": sha256_file(weights)}},
        "embedding_space_id": info.embedding_space_id,
        "input": {"name": INPUT_NAME, "colour_order": "RGB", "value_range": [0.0, 1.0],
                  "size": [info.input_size, info.input_size], "dtype": "float32",
                  "normalisation": {"mean": list(info.mean), "std": list(info.std), "applied": "in-graph"}},
        "output": {"name": OUTPUT_NAME, "dim": info.embedding_dim, "dtype": "float32", "l2_normalised": True},
        "preprocessing": info.preprocessing.to_dict(),
        "artefacts": [],
        "parity": {"images": parity["images"], "products": parity["products"], "queries": parity["queries"],
                   "gallery": parity["gallery"], "source": pset.images.source,
                   "reference": "pytorch fp32", "reference_recall_at_1": parity["reference_recall_at_1"],
                   "cosine_thresholds": {f"{f}/{p}": t for (f, p), t in COSINE_THRESHOLDS.items()},
                   "max_recall_drop_points": MAX_RECALL_DROP_POINTS, "passed": parity["passed"],
                   "failures": parity["failures"]},
        "tools": tool_versions({"tflite-support": TFLITE_SUPPORT.version("tflite-support") if opts.clients else None,
                                "mediapipe": MEDIAPIPE.version("mediapipe") if opts.clients else None}),
        "warnings": stages.warnings,
        "notes": skipped,
        "timings_s": stages.timings,
        "export_options": {"formats": opts.formats, "quantize": opts.quantizations,
                           "calibration": opts.calib or "embedded benchmark (dp-data synth), test split",
                           "calib_count": opts.calib_count, "parity_images": opts.parity_images},
    })
    for v in written:
        entry = {"file": v.file, "format": v.format, "precision": v.precision, "layout": v.layout,
                 "input_name": INPUT_NAME, "output_name": OUTPUT_NAME, "sha256": "", "size_bytes": 0}
        entry.update(extra.get(v.key, {}))
        entry["parity"] = parity["artefacts"].get(v.key, [])
        if v.key in parity["clients"]:
            entry["clients"] = parity["clients"][v.key]
        manifest["artefacts"].append(entry)
    return manifest
