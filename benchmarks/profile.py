"""``dp-bench profile``: where an ONNX artefact's time goes, per op type (ONNX Runtime profiling).

Why: "int8 is not faster" is only useful with the reason attached -- the int8 convolutions
may well be faster while QuantizeLinear/DequantizeLinear pairs, float islands (pooling,
normalisation) and layout reorders eat the gain. ``SessionOptions.enable_profiling`` records
every kernel; the last ``runs`` of the session's ``model_run`` windows are attributed to op
types here (warm-up runs excluded), so two artefacts can be compared op type by op type.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepproduct.sdk.embedders import one_line

from .runners import ArtefactRef, OnnxRunner


@dataclass(frozen=True)
class OpTypeTime:
    op_type: str
    nodes: int
    total_ms_per_run: float
    share: float


@dataclass(frozen=True)
class Profile:
    artefact: str
    threads: int
    runs: int
    run_ms_median: float
    ops: list[OpTypeTime]

    @property
    def kernel_ms(self) -> float:
        return sum(o.total_ms_per_run for o in self.ops)


def artefact_ref_for_file(path: str | os.PathLike) -> ArtefactRef:
    """A bare .onnx path, named by its export manifest when one sits beside it."""
    path = Path(path)
    key = path.stem
    try:
        from deepproduct.sdk.model_manifest import load_model_manifest

        art = load_model_manifest(path.parent).artefact_for_file(path)
        return ArtefactRef(key=f"{art.format}/{art.precision}", format=art.format, precision=art.precision,
                           path=path, layout=art.layout, input_name=art.input_name, output_name=art.output_name)
    except Exception:  # no manifest, or the file is not listed: name it by its file
        return ArtefactRef(key=key, format="onnx", precision="int8" if "int8" in key else "fp32", path=path)


def aggregate(events: list[dict[str, Any]], runs: int) -> tuple[list[OpTypeTime], float]:
    """Per-op-type kernel time over the last ``runs`` model runs of a profile trace.

    Each op type's time is summed within each run and the median over runs is reported: on a
    shared machine one descheduled 3 us kernel can show up as 8 ms, and a mean would pin that on
    whichever op type happened to be running.
    """
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                     if e.get("cat") == "Session" and e.get("name") == "model_run")[-runs:]
    if not windows:
        raise ValueError("the profile holds no model_run events")
    starts = np.array([w[0] for w in windows])
    ends = np.array([w[1] for w in windows])
    per_run: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(windows)))
    nodes: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        i = int(np.searchsorted(starts, e["ts"], side="right")) - 1
        if i < 0 or e["ts"] > ends[i]:
            continue
        op = e.get("args", {}).get("op_name", "?")
        per_run[op][i] += e["dur"] / 1e3
        nodes[op].add(e["name"])
    medians = {op: float(np.median(t)) for op, t in per_run.items()}
    grand = sum(medians.values()) or 1.0
    ops = sorted((OpTypeTime(op, len(nodes[op]), round(t, 4), round(t / grand, 4)) for op, t in medians.items()),
                 key=lambda o: -o.total_ms_per_run)
    return ops, float(np.median(ends - starts) / 1e3)


def profile_onnx(path: str | os.PathLike, threads: int = 1, runs: int = 50, warmup: int = 10,
                 batch: int = 1, input_size: int | None = None) -> Profile:
    """Run the artefact ``warmup + runs`` times with profiling on and aggregate by op type."""
    ref = artefact_ref_for_file(path)
    with tempfile.TemporaryDirectory(prefix="dp-bench-prof-") as tmp:
        runner = OnnxRunner(ref, threads, profile_prefix=str(Path(tmp) / "ort"))
        shape = runner.session.get_inputs()[0].shape
        size = input_size or next((d for d in shape[2:] if isinstance(d, int) and d > 0), 224)
        x = runner.prepare(np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32))
        try:
            for _ in range(warmup + runs):
                runner.infer(x)
        except Exception as exc:  # onnxruntime's own types: the model does not take a (B, 3, S, S) image
            raise ValueError(f"{path}: ONNX Runtime cannot run it on a {tuple(x.shape)} float32 image batch "
                             f"({one_line(exc)})") from None
        trace = Path(runner.end_profiling())
        events = json.loads(trace.read_text(encoding="utf-8"))
    ops, run_ms = aggregate(events, runs)
    return Profile(artefact=ref.key, threads=threads, runs=runs, run_ms_median=round(run_ms, 4), ops=ops)


def profile_table(profiles: list[Profile]) -> str:
    """Markdown: one row per op type, ms per run (and share) for each profiled artefact."""
    order: list[str] = []
    for p in profiles:
        order += [o.op_type for o in p.ops if o.op_type not in order]
    head = "| op type | " + " | ".join(f"{p.artefact} ms/run (share, nodes)" for p in profiles) + " |"
    lines = [head, "|---|" + "---:|" * len(profiles)]
    for op in order:
        cells = []
        for p in profiles:
            o = next((o for o in p.ops if o.op_type == op), None)
            cells.append(f"{o.total_ms_per_run:.3f} ({100 * o.share:.1f} %, {o.nodes})" if o else "--")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines.append("| **sum of op-type medians** | " + " | ".join(f"**{p.kernel_ms:.3f}**" for p in profiles) + " |")
    lines.append("| model_run median | " + " | ".join(f"{p.run_ms_median:.3f}" for p in profiles) + " |")
    return "\n".join(lines) + "\n"
