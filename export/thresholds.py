"""The export's acceptance policy: how close each artefact must stay to PyTorch, and how much
Recall@1 a quantised artefact may lose. Numbers only (a leaf module): the variant planner, the
converters (Core ML's palettisation sweep), verify and the pipeline's record all read them, and a
leaf cannot take part in an import loop. Why these values: docs/export.md.
"""

from __future__ import annotations

#: Allowed Recall@1 drop of a quantised artefact against fp32, in points (the paired gate's margin,
#: recall_gate.py).
MARGIN_POINTS = 2.0

#: Mean-cosine thresholds against PyTorch, per (format, precision); see docs/export.md.
COSINE_THRESHOLDS: dict[tuple[str, str], float] = {
    ("onnx", "fp32"): 0.9999, ("onnx", "fp16"): 0.9999, ("onnx", "int8"): 0.98,
    ("tflite", "fp32"): 0.9999, ("tflite", "int8"): 0.98,
    ("coreml", "fp32"): 0.99999, ("coreml", "fp16"): 0.9999, ("coreml", "int8"): 0.999,
    ("coreml", "palette6"): 0.99,
    ("executorch", "fp32"): 0.9999, ("executorch", "int8"): 0.99, ("executorch-coreml", "fp16"): 0.9999,
}
#: Quantised artefacts may lose at most this many Recall@1 points against the fp32 artefact, as
#: judged by the paired test of recall_gate.py (a supported drop, not a noisy difference).
MAX_RECALL_DROP_POINTS = MARGIN_POINTS
