"""The complete exporter table: the rows of ``exporters.py`` plus the rows defined in their own
modules (ExecuTorch). Everything that walks the table imports ``EXPORTERS`` from here, so the
plug-in modules can import ``exporters`` without an import cycle (``tests/training/test_import_graph.py``).
"""

from __future__ import annotations

from . import executorch_export  # noqa: F401 - registers the executorch and executorch-coreml rows
from .exporters import EXPORTERS, ExportJob

__all__ = ["EXPORTERS", "ExportJob"]
