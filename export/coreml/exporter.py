"""Core ML's row of the exporter table: ML Program packages through coremltools (convert.py) and
their structural checks (checks.py, coreml/mil_evaluator.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import Exporter, ExportJob

if TYPE_CHECKING:
    from ..variants import Variant

from pathlib import Path

from ..errors import ExportError
from ..model_info import ModelInfo


class CoreMLExporter(Exporter):
    format, suffix, layout = "coreml", ".mlpackage", "image"
    precisions = {"none": "fp16", "fp32": "fp32", "fp16": "fp16", "int8": "int8", "palette": "palette6"}

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .convert import coremltools_warnings, export_coreml

        precisions = [v.precision for v in variants]
        written, selection = job.stages.run(
            f"coreml: convert {', '.join(precisions)} (coremltools, torch.export)",
            lambda: export_coreml(job.model, job.info, precisions, job.out, {v.precision: v.file for v in variants},
                                  job.calib))
        if not any("not been tested" in w for w in job.stages.warnings):
            job.stages.warnings += coremltools_warnings()  # logged only at import: recomputed
        return {v.key: {"path": written[v.precision], "kept_fp16": selection.get(v.precision)} for v in variants}

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        from .checks import check_package
        from .convert import MINIMUM_TARGET

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
