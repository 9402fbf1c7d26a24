"""The ExecuTorch rows of the exporter table: XNNPACK ``.pte`` (fp32, int8) and Core ML ``.pte``.

Torch-free to import (the table is read by torch-free code); the conversion itself lives in
:mod:`.executorch_lower`. Two formats, because they are two different deployables:

- ``executorch``: the XNNPACK delegate, the one that runs on every Android/iOS CPU and here on
  the host, so its parity is measured through the ExecuTorch runtime itself on the held-out
  images (:func:`parity_runs`).
- ``executorch-coreml``: the Core ML delegate (ML Program, fp16 compute, iOS 16+). It exports on
  Linux, but the Linux ExecuTorch runtime has no Core ML backend: here it gets structural checks
  only (program readable, one ``CoreMLBackend`` delegate, no portable-kernel ops), and the
  manifest says so; ``dp-export verify`` runs it where the runtime has the backend (macOS).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..base import FP32_INT8, Exporter, ExportJob, convert_each
from ..errors import ExportError

if TYPE_CHECKING:  # variants reads the finished table at import: no import cycle at run time
    from ..variants import Variant

XNNPACK_RUNTIME = "executorch runtime (XNNPACK)"
COREML_RUNTIME = "executorch runtime (Core ML)"
COREML_NOT_RUN = ("structural checks only: the ExecuTorch runtime here has no CoreMLBackend "
                  "(Core ML runs on Apple platforms); dp-export verify runs it on macOS")


BACKEND_OF_FORMAT = {"executorch": "XnnpackBackend", "executorch-coreml": "CoreMLBackend"}


def structure_problems(path: Path, fmt: str, space_id: str) -> list[str]:
    """What is wrong with a written ``.pte`` (empty: fine), from the file alone: readable, exactly
    one delegate of the format's backend, no portable-kernel op in ``forward``, our metadata."""
    from .lower import pte_facts, read_metadata

    try:
        facts = pte_facts(path)
    except ExportError as exc:
        return [str(exc)]
    problems = []
    backend = BACKEND_OF_FORMAT[fmt]
    if facts["delegates"] != [backend]:
        problems.append(f"{path.name}: expected one {backend} delegate, found {facts['delegates']}")
    if facts["non_delegated_kernels"]:
        problems.append(f"{path.name}: portable kernels left in 'forward': {', '.join(facts['non_delegated_kernels'])}")
    try:
        space = read_metadata(path).get("deepproduct.embedding_space_id")
    except Exception as exc:  # noqa: BLE001 - a program without our constant method
        problems.append(f"{path.name}: no readable deepproduct metadata ({type(exc).__name__})")
    else:
        if space != space_id:
            problems.append(f"{path.name}: embedded metadata names embedding space {str(space)[:16]}..., "
                            f"the manifest {space_id[:16]}...")
    return problems


def _structure(job: ExportJob, variant: Variant, fmt: str) -> dict:
    from .lower import pte_facts

    path = job.out / variant.file
    problems = structure_problems(path, fmt, job.info.embedding_space_id)
    if problems:
        raise ExportError("ExecuTorch structural check failed: " + "; ".join(problems))
    return pte_facts(path)


class ExecuTorchExporter(Exporter):
    format, suffix, layout = "executorch", ".pte", "NCHW"
    precisions = FP32_INT8

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .lower import export_xnnpack_fp32, export_xnnpack_int8

        steps = {"fp32": ("executorch: lower fp32 to XNNPACK (.pte)",
                          lambda p: export_xnnpack_fp32(job.model, job.info, p)),
                 "int8": ("executorch: int8 PT2E (XNNPACKQuantizer, per-channel) to XNNPACK",
                          lambda p: export_xnnpack_int8(job.model, job.info, job.calib, p))}
        return {v.key: {"delegation": summary.to_dict()} for v, _, summary in convert_each(job, variants, steps)}

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        structure = job.stages.run(f"executorch: structural checks {variant.precision}",
                                   lambda: _structure(job, variant, self.format))
        size = job.info.input_size
        return {"input_shape": [1, 3, size, size], "delegation": facts["delegation"], "structure": structure}


class ExecuTorchCoreMLExporter(Exporter):
    format, suffix, layout = "executorch-coreml", ".coreml.pte", "NCHW"
    precisions = {"none": "fp16", "fp32": None, "fp16": "fp16", "int8": None, "palette": None}

    def export(self, job: ExportJob, variants: list[Variant]) -> dict[str, dict]:
        from .lower import export_coreml_fp16

        steps = {"fp16": ("executorch-coreml: lower fp16 to the Core ML delegate (.pte)",
                          lambda p: export_coreml_fp16(job.model, job.info, p))}
        return {v.key: {"delegation": summary.to_dict()} for v, _, summary in convert_each(job, variants, steps)}

    def check(self, job: ExportJob, variant: Variant, facts: dict) -> dict:
        from .lower import COREML, COREML_MINIMUM_TARGET, backend_available

        structure = job.stages.run("executorch-coreml: structural checks",
                                   lambda: _structure(job, variant, self.format))
        size = job.info.input_size
        return {"input_shape": [1, 3, size, size], "minimum_deployment_target": COREML_MINIMUM_TARGET,
                "delegation": facts["delegation"], "structure": structure,
                "runtime_check": "measured" if backend_available(COREML) else COREML_NOT_RUN}


def parity_runs(fmt: str, path: Path, images: np.ndarray) -> list[tuple[str, Callable[[], np.ndarray]]]:
    """The runtimes ``verify.measure`` runs an ExecuTorch artefact with (none: structural only)."""
    from .lower import COREML, backend_available, run_pte

    if fmt == "executorch":
        return [(XNNPACK_RUNTIME, lambda: run_pte(path, images))]
    if fmt == "executorch-coreml" and backend_available(COREML):
        return [(COREML_RUNTIME, lambda: run_pte(path, images))]
    return []
