"""ONNX's row of the exporter table: fp32 from ``torch.onnx`` (dynamo), fp16 by conversion, int8 by
static QDQ quantisation (convert.py, quantize.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import Exporter, ExportJob

if TYPE_CHECKING:
    from ..variants import Variant


class OnnxExporter(Exporter):
    format, suffix, layout = "onnx", ".onnx", "NCHW"
    precisions = {"none": "fp32", "fp32": "fp32", "fp16": "fp16", "int8": "int8", "palette": None}

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .convert import convert_fp16, export_onnx

        fp32_path = job.out / f"model_fp32{self.suffix}"
        job.stages.run("onnx: export fp32 (torch.onnx dynamo)", lambda: export_onnx(job.model, job.info, fp32_path))
        for v in variants:
            if v.precision == "fp16":
                job.stages.run("onnx: fp16", lambda v=v: convert_fp16(fp32_path, job.out / v.file))
            elif v.precision == "int8":
                from .quantize import quantize_int8

                job.stages.run("onnx: int8 static QDQ per-channel",
                               lambda v=v: quantize_int8(fp32_path, job.out / v.file, job.calib, job.info))
        if all(v.precision != "fp32" for v in variants):
            fp32_path.unlink()  # only the source of fp16/int8 here
        return {}

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        from .convert import opset_of

        size = job.info.input_size
        return {"opset": opset_of(job.out / variant.file), "input_shape": ["N", 3, size, size]}
