"""What every export format shares: the job an exporter gets, the row class it subclasses, and the
registry of rows (:data:`EXPORTERS`). The rows themselves live with their formats
(``export/<format>/exporter.py``); ``export/formats.py`` is the table that imports them.

``dp-export`` looks a format up in :data:`EXPORTERS` instead of branching on its name, so a new
format is one folder with one ``Exporter`` subclass, plus one line in ``formats.py``
(docs/export.md, "Adding a format"). A row declares what the rest of the
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

from .model_info import ModelInfo

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
