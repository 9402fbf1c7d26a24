"""The table of exporters: one row per format, each a converter plus its own structural check.

``dp-export`` looks a format up here (:data:`EXPORTERS`) instead of branching on its name, so a
new format is one class and one ``register_exporter`` line. A row declares what the rest of the
exporter needs to know about the format -- file suffix, tensor layout, and which precision each
``--quantize`` token means for it (``None``: no such variant, skipped and reported) -- and two
steps the pipeline runs for the format's variants:

- ``export(job, variants)`` writes every variant's file into ``job.out`` (each converter call as
  a ``job.stages.run`` stage) and returns per-variant facts the check needs (``{variant.key: {}}``);
- ``check(job, variant, facts)`` runs the structural checks of one written artefact and returns
  the format-specific fields of its manifest entry (``input_shape``, ``opset``, ``metadata``...).

Parity with real runtimes is measured afterwards for every format alike (``verify.measure``).
Heavy converter modules are imported inside the steps, so reading the table costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deepproduct.sdk.registry import Registry

from .errors import ExportError
from .model_info import ModelInfo
from .runtimes import nchw_to_nhwc

if TYPE_CHECKING:
    from .variants import Variant


@dataclass
class ExportJob:
    """What every exporter gets: the eval-mode model, its facts, the output and scratch folders,
    the calibration batch (NCHW float32, ``None`` when nothing is quantised) and the stage runner
    (``stages.run(name, fn)``: one progress line and a timing; ``stages.warnings``)."""

    model: Any  # torch.nn.Module
    info: ModelInfo
    out: Path
    scratch: Path
    calib: np.ndarray | None
    stages: Any  # pipeline._Stages


class Exporter:
    """One format's row: declared facts plus the export and check steps (override both)."""

    format: ClassVar[str]
    suffix: ClassVar[str]  # file name = model_<precision><suffix>
    layout: ClassVar[str]  # NCHW | NHWC | image (the manifest's ``layout``)
    #: ``--quantize`` token -> precision of the artefact it writes (None: no such variant).
    precisions: ClassVar[dict[str, str | None]]

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        raise NotImplementedError

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        raise NotImplementedError


def convert_each(job: ExportJob, variants: list[Variant], steps: dict[str, tuple[str, Callable[[Path], Any]]]
                 ) -> Iterator[tuple[Variant, Path, Any]]:
    """Write each variant as one stage: ``steps[precision] = (stage name, convert(path))``;
    yields ``(variant, path, what convert returned)``."""
    for v in variants:
        path = job.out / v.file
        name, convert = steps[v.precision]
        yield v, path, job.stages.run(name, lambda c=convert, p=path: c(p))


EXPORTERS: Registry[Exporter] = Registry("export format")

#: The precisions of a format that writes fp32 and int8 only (TFLite, ExecuTorch XNNPACK).
FP32_INT8: dict[str, str | None] = {"none": "fp32", "fp32": "fp32", "fp16": None, "int8": "int8", "palette": None}


def register_exporter(cls: type[Exporter]) -> type[Exporter]:
    """Class decorator: add a row (an instance of ``cls``) under ``cls.format``."""
    EXPORTERS.register(cls.format, cls())
    return cls


@register_exporter
class OnnxExporter(Exporter):
    format, suffix, layout = "onnx", ".onnx", "NCHW"
    precisions = {"none": "fp32", "fp32": "fp32", "fp16": "fp16", "int8": "int8", "palette": None}

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .onnx_export import convert_fp16, export_onnx

        fp32_path = job.out / f"model_fp32{self.suffix}"
        job.stages.run("onnx: export fp32 (torch.onnx dynamo)", lambda: export_onnx(job.model, job.info, fp32_path))
        for v in variants:
            if v.precision == "fp16":
                job.stages.run("onnx: fp16", lambda v=v: convert_fp16(fp32_path, job.out / v.file))
            elif v.precision == "int8":
                from .onnx_quantize import quantize_int8

                job.stages.run("onnx: int8 static QDQ per-channel",
                               lambda v=v: quantize_int8(fp32_path, job.out / v.file, job.calib, job.info))
        if all(v.precision != "fp32" for v in variants):
            fp32_path.unlink()  # only the source of fp16/int8 here
        return {}

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        from .onnx_export import opset_of

        size = job.info.input_size
        return {"opset": opset_of(job.out / variant.file), "input_shape": ["N", 3, size, size]}


@register_exporter
class TFLiteExporter(Exporter):
    format, suffix, layout = "tflite", ".tflite", "NHWC"
    precisions = FP32_INT8

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .tflite_export import export_tflite_fp32, export_tflite_int8
        from .tflite_metadata import write_metadata

        size = job.info.input_size
        facts: dict[str, dict] = {}
        steps = {"fp32": ("tflite: convert fp32 (litert-torch, NHWC)",
                          lambda p: export_tflite_fp32(job.model, size, p)),
                 "int8": ("tflite: int8 PT2E static per-channel",
                          lambda p: export_tflite_int8(job.model, size, nchw_to_nhwc(job.calib), p))}
        for v, path, _ in convert_each(job, variants, steps):
            # Writing the metadata also reads it back and checks what the clients rely on.
            facts[v.key] = {"metadata": job.stages.run(
                f"tflite: metadata ({v.precision}, tflite-support venv)",
                lambda p=path, v=v: write_metadata(p, job.info, v.precision, job.scratch / "metadata"))}
        return facts

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        from .tflite_export import op_names
        from .tflite_metadata import NORMALISATION

        md = facts["metadata"]
        ops = op_names(job.out / variant.file)
        size = job.info.input_size
        return {"input_shape": [1, size, size, 3],
                "op_counts": {o: ops.count(o) for o in sorted(set(ops))},
                "metadata": {"name": md.get("name"), "version": md.get("version"),
                             "author": md.get("author"), "license": md.get("license"),
                             "normalisation": {k: list(v) for k, v in NORMALISATION.items()},
                             "colour_space": "RGB"}}


@register_exporter
class CoreMLExporter(Exporter):
    format, suffix, layout = "coreml", ".mlpackage", "image"
    precisions = {"none": "fp16", "fp32": "fp32", "fp16": "fp16", "int8": "int8", "palette": "palette6"}

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .coreml_export import coremltools_warnings, export_coreml

        precisions = [v.precision for v in variants]
        written, selection = job.stages.run(
            f"coreml: convert {', '.join(precisions)} (coremltools, torch.export)",
            lambda: export_coreml(job.model, job.info, precisions, job.out, {v.precision: v.file for v in variants},
                                  job.calib))
        if not any("not been tested" in w for w in job.stages.warnings):
            job.stages.warnings += coremltools_warnings()  # logged only at import: recomputed
        return {v.key: {"path": written[v.precision], "kept_fp16": selection.get(v.precision)} for v in variants}

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        from .coreml_checks import check_package
        from .coreml_export import MINIMUM_TARGET

        structure = job.stages.run(f"coreml: structural checks {variant.precision}",
                                   lambda: _checked(check_package, facts["path"], job.info, variant.precision))
        size = job.info.input_size
        extra = {"input_shape": [1, 3, size, size], "minimum_deployment_target": MINIMUM_TARGET,
                 "structure": structure}
        if facts["kept_fp16"] is not None:
            extra["kept_fp16"] = facts["kept_fp16"]
        return extra


def _checked(check, path: Path, info: ModelInfo, precision: str) -> dict:
    try:
        return check(path, info, precision)
    except AssertionError as exc:
        raise ExportError(f"Core ML structural check failed: {exc}") from exc
