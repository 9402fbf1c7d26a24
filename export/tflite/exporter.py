"""TFLite's row of the exporter table: fp32 and int8 through litert-torch (convert.py), with TFLite
metadata written and read back in the Task Library's side environment (metadata.py, tflite/side_envs.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import FP32_INT8, Exporter, ExportJob, convert_each

if TYPE_CHECKING:
    from ..variants import Variant

from ..runtimes import nchw_to_nhwc


class TFLiteExporter(Exporter):
    format, suffix, layout = "tflite", ".tflite", "NHWC"
    precisions = FP32_INT8

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .convert import export_tflite_fp32, export_tflite_int8
        from .metadata import write_metadata

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
        from .convert import op_names
        from .metadata import NORMALISATION

        md = facts["metadata"]
        ops = op_names(job.out / variant.file)
        size = job.info.input_size
        return {"input_shape": [1, size, size, 3],
                "op_counts": {o: ops.count(o) for o in sorted(set(ops))},
                "metadata": {"name": md.get("name"), "version": md.get("version"),
                             "author": md.get("author"), "license": md.get("license"),
                             "normalisation": {k: list(v) for k, v in NORMALISATION.items()},
                             "colour_space": "RGB"}}
