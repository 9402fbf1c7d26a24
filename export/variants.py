"""Formats and quantisation choices -> the concrete artefacts an export writes.

``--quantize`` tokens mean the same across formats where they can; where a format has no such
variant the token is skipped for that format (and the skip is reported), never silently mapped
to something else:

=========  ===========  ===========  =======================================
token      onnx         tflite       coreml
=========  ===========  ===========  =======================================
none       fp32         fp32         fp16 compute (the ML Program default)
fp32       fp32         fp32         fp32 compute
fp16       fp16         --           fp16 compute
int8       int8 (QDQ)   int8 (PT2E)  int8 linear weights, fp16 compute
palette    --           --           6-bit palettised weights, fp16 compute
=========  ===========  ===========  =======================================

ExecuTorch (``.pte``, executorch/exporter.py): ``executorch`` is the XNNPACK delegate, ``none`` /
``fp32`` -> fp32 and ``int8`` -> int8 (PT2E, XNNPACKQuantizer); ``executorch-coreml`` is the Core
ML delegate, ``none`` / ``fp16`` -> fp16 compute.

Core ML's ``none`` is fp16 because Core ML programs run in fp16 on the GPU and Neural Engine
anyway; an fp32 package is available with ``fp32`` (and is what the conversion-fidelity
threshold of 0.99999 is measured on).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .formats import EXPORTERS
from .thresholds import COSINE_THRESHOLDS

#: The formats of the exporter table (export/exporters.py), in its order; each row declares its
#: file suffix, layout and which precision every ``--quantize`` token means for it.
FORMATS = tuple(EXPORTERS)
QUANTIZATIONS = ("none", "fp32", "fp16", "int8", "palette")



@dataclass(frozen=True)
class Variant:
    """One artefact to write: format, precision and its file name inside the export folder."""

    format: str
    precision: str

    @property
    def file(self) -> str:
        return f"model_{self.precision}{EXPORTERS.get(self.format).suffix}"

    @property
    def layout(self) -> str:
        return EXPORTERS.get(self.format).layout

    @property
    def key(self) -> str:
        return f"{self.format}/{self.precision}"

    @property
    def cosine_threshold(self) -> float:
        return COSINE_THRESHOLDS[(self.format, self.precision)]

    @property
    def quantized(self) -> bool:
        return self.precision in ("int8", "palette6")


def parse_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"no {what} given; choose from {', '.join(allowed)}")
    bad = [t for t in items if t not in allowed]
    if bad:
        raise UsageError(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def plan_variants(formats: list[str], quantizations: list[str]) -> tuple[list[Variant], list[str]]:
    """The artefacts to write, in a stable order, and a note for every token a format lacks."""
    variants: list[Variant] = []
    skipped: list[str] = []
    for fmt in formats:
        for q in quantizations:
            precision = EXPORTERS.get(fmt).precisions.get(q)
            if precision is None:
                skipped.append(f"{fmt} has no {q!r} variant (skipped)")
                continue
            v = Variant(fmt, precision)
            if v not in variants:
                variants.append(v)
    if not variants:
        raise UsageError("the chosen formats and quantisations give no artefact: " + "; ".join(skipped))
    return variants, skipped
