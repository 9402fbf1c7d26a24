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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deepproduct.sdk.fileio import swap_folder
from deepproduct.sdk.preprocessing import PreprocessingSpec
from deepproduct.training.checkpoint import CheckpointError, embedding_space_id, load_model

from . import parity_set as ps
from .calibration import (
    ImageSet,
    calibration_record,
    calibration_source,
    is_manifest,
    load_tensors,
    resolve_image_source,
    whole_product_indices,
)
from .errors import ExportError, ParityError, UsageError
from .formats import EXPORTERS, ExportJob
from .manifest import (
    PLACEHOLDER_SHA256,
    artefact_entry,
    build_manifest,
    size_of,
    tool_versions,
    write_manifest,
)
from .model_info import ModelInfo
from .quiet import quiet
from .recall_gate import rule_record as gate_rule
from .report import render as render_report
from .thresholds import COSINE_THRESHOLDS, MAX_RECALL_DROP_POINTS
from .variants import Variant, plan_variants
from .verify import ArtefactSpec, measure, report_dict
from .workspace import check_export_folder, export_workspace, weights_file

Say = Callable[[str], None]
REPORT_FILE = "export_report.md"


@dataclass
class ExportOptions:
    checkpoint: Path
    out: Path
    formats: list[str]
    quantizations: list[str]
    calib: str | None = None  # calibration: a manifest's train split or a folder (None: the embedded benchmark)
    parity: str | None = None  # held-out images (None: --calib's test split if a manifest, else the benchmark's)
    image_size: int | None = None
    calib_count: int = 64
    parity_images: int | None = None  # None: the whole held-out split
    model_name: str | None = None
    model_version: str = "1"
    author: str = "DeepProduct"
    license: str = "Apache-2.0"
    overwrite: bool = False
    clients: bool = True
    seed: int = 0  # calibration sample (the parity set does not depend on it)


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


def export(opts: ExportOptions, say: Say = print) -> ExportResult:
    """Run the whole export; raises :class:`ExportError` (nothing written at ``opts.out``)."""
    variants, skipped = plan_variants(opts.formats, opts.quantizations)
    out = opts.out.resolve()
    check_export_folder(out, opts.checkpoint, opts.calib, opts.parity, opts.overwrite)  # before any work
    if not weights_file(opts.checkpoint).is_file():  # checked before the leftovers are touched
        raise ExportError(f"cannot export: {opts.checkpoint}: checkpoint not found")
    with export_workspace(out) as (tmp, scratch):  # locked; a killed run's marked leftovers cleaned first
        # e.g. an interrupted swap's previous export, restored: the same policy again
        check_export_folder(out, opts.checkpoint, opts.calib, opts.parity, opts.overwrite)
        result = _export_into(tmp, scratch, opts, variants, skipped, say)
        swap_folder(tmp, out)
        result.out = out
        return result


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
    info = model_info(model, cfg, opts, size, weights_file(opts.checkpoint))
    spec = info.preprocessing

    parity_src = opts.parity if opts.parity is not None else (opts.calib if is_manifest(opts.calib) else None)
    source: ImageSet = stages.run("find parity images (held-out split)",
                                  lambda: resolve_image_source(parity_src, scratch, split="test"))
    parity_images, parity_tensors = stages.run(
        "preprocess parity images",
        lambda: load_tensors(source, spec, opts.parity_images, seed=1, select=whole_product_indices))
    need_calib = any(v.quantized for v in variants)
    calib = None
    calibration: dict | None = None
    if need_calib:
        candidates = stages.run("find calibration images (training split, parity images excluded)",
                                lambda: calibration_source(opts.calib, scratch, parity_images))
        calib_set, calib = stages.run(
            f"preprocess {opts.calib_count} calibration images",
            lambda: load_tensors(candidates, spec, opts.calib_count, seed=opts.seed, require=True))
        say(f"    {len(calib_set)} calibration images from {candidates.source}"
            + (f" ({len(calib_set.skipped)} unreadable skipped)" if calib_set.skipped else ""))
        calibration = calibration_record(calib_set, opts.calib_count, opts.seed)
    with torch.no_grad():
        reference = model(torch.from_numpy(parity_tensors)).numpy()
    pset = ps.save(tmp, parity_images, reference)

    written: list[Variant] = []
    extra: dict[str, dict] = {}
    by_format: dict[str, list[Variant]] = {}
    for v in variants:
        by_format.setdefault(v.format, []).append(v)
    job = ExportJob(model=model, info=info, out=tmp, scratch=scratch, calib=calib, stages=stages)
    for fmt, vs in by_format.items():  # the exporter table: one row per format (formats.py)
        exporter = EXPORTERS.get(fmt)
        facts = exporter.export(job, vs)
        for v in vs:
            extra[v.key] = exporter.check(job, v, facts.get(v.key, {}))
        written += vs

    specs = [ArtefactSpec(v.file, v.format, v.precision) for v in written]
    report = stages.run("parity by real runtimes",
                        lambda: measure(tmp, specs, pset, spec, stages.note, opts.clients, scratch / "clients"))
    stages.warnings = _dedupe_warnings(stages.warnings)
    manifest = _build_manifest(info, opts, written, extra, report, stages, skipped, pset)
    if calibration is not None:
        manifest["calibration"] = calibration
    manifest["artefacts"] = [dict(a, sha256=PLACEHOLDER_SHA256, size_bytes=size_of(tmp / a["file"]))
                             for a in manifest["artefacts"]]
    (tmp / REPORT_FILE).write_text(render_report(manifest), encoding="utf-8")
    from . import model_card  # README.md, rendered from the manifest before it is hashed into it

    evaluation = model_card.evaluation_from_run(opts.checkpoint)
    if evaluation is not None:
        manifest["evaluation"] = evaluation
    model_card.write(tmp, manifest)
    write_manifest(tmp, manifest)
    table = report.table()
    if not report.passed:
        raise ParityError("parity thresholds failed:\n  " + "\n  ".join(report.failures()) + "\n\n" + table)
    return ExportResult(tmp, manifest, stages.timings, table)


def _dedupe_warnings(items: list[str]) -> list[str]:
    """Keep what a user of the artefacts should know (untested versions, user/runtime warnings)."""
    keep: list[str] = []
    for w in items:
        w = " ".join(w.split())[:300]
        noteworthy = "not been tested" in w or w.split(":")[0] in ("UserWarning", "RuntimeWarning")
        if noteworthy and w not in keep:
            keep.append(w)
    return keep[:40]


def _build_manifest(info: ModelInfo, opts: ExportOptions, written: list[Variant], extra: dict,
                    report, stages: _Stages, skipped: list[str], pset: ps.ParitySet) -> dict:
    from .tflite.side_envs import MEDIAPIPE, TFLITE_SUPPORT

    parity = report_dict(report)
    artefacts = []
    for v in written:
        entry = artefact_entry(v.file, v.format, v.precision, v.layout, **extra.get(v.key, {}))
        entry["parity"] = parity["artefacts"].get(v.key, [])
        if v.key in parity["clients"]:
            entry["clients"] = parity["clients"][v.key]
        artefacts.append(entry)
    return build_manifest(
        info, artefacts=artefacts, source_checkpoint=weights_file(opts.checkpoint),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        parity={"images": parity["images"], "products": parity["products"], "queries": parity["queries"],
                "gallery": parity["gallery"], "source": pset.images.source,
                "reference": "pytorch fp32", "reference_recall_at_1": parity["reference_recall_at_1"],
                "cosine_thresholds": {f"{f}/{p}": t for (f, p), t in COSINE_THRESHOLDS.items()},
                "max_recall_drop_points": MAX_RECALL_DROP_POINTS, "recall_gate": gate_rule(),
                "passed": parity["passed"],
                "failures": parity["failures"]},
        tools=tool_versions({"tflite-support": TFLITE_SUPPORT.version("tflite-support") if opts.clients else None,
                             "mediapipe": MEDIAPIPE.version("mediapipe") if opts.clients else None}),
        warnings=stages.warnings,
        notes=skipped,
        timings_s=stages.timings,
        export_options={"formats": opts.formats, "quantize": opts.quantizations,
                        "calibration": opts.calib or "embedded benchmark (dp-data synth), train split",
                        "parity": opts.parity, "calib_count": opts.calib_count,
                        "calib_seed": opts.seed, "parity_images": opts.parity_images},
    )
