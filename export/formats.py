"""The exporter table: one line per format, in the order the manifest lists artefacts.

Each format is a folder (``export/<format>/``: its converter, its quantiser, its structural checks
and ``exporter.py`` with its row); this module registers the rows in ``base.EXPORTERS``, and
everything that walks the table imports ``EXPORTERS`` from here. Adding a format is a new folder
plus one line below (docs/export.md, "Adding a format").
"""

from __future__ import annotations

from .base import EXPORTERS, ExportJob, register_exporter
from .coreml.exporter import CoreMLExporter
from .executorch.exporter import ExecuTorchCoreMLExporter, ExecuTorchExporter
from .onnx.exporter import OnnxExporter
from .tflite.exporter import TFLiteExporter

for _row in (OnnxExporter, TFLiteExporter, CoreMLExporter, ExecuTorchExporter, ExecuTorchCoreMLExporter):
    register_exporter(_row)

__all__ = ["EXPORTERS", "ExportJob"]
