"""Describe the machine a measurement was taken on, so every JSON line stands on its own.

A latency figure without the CPU, the core count, the library versions and the load at the
time is not comparable with anything; the report groups and labels results by this record.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
from pathlib import Path
from typing import Any

#: Distributions whose versions change the numbers (runtimes, BLAS users, search baselines).
LIBRARIES = ("numpy", "onnxruntime", "ai-edge-litert", "torch", "faiss-cpu", "onnx", "deepproduct")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The ``model name`` line of /proc/cpuinfo (falls back to ``platform.processor()``)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """The SIMD features that decide which int8/fp32 kernels a runtime can use."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "asimddp",
              "i8mm", "sve")
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [f for f in wanted if f in have]
    return []


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _static_description() -> dict[str, Any]:
    return {
        "kind": "host",
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": usable_cores(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }


def describe_host() -> dict[str, Any]:
    """The machine record, with the 1-minute load average at the time of the call.

    The load matters: this project's host is shared, and a median taken at load 3 on 2 cores
    is not the same figure as one taken on an idle machine.
    """
    desc = dict(_static_description())
    try:
        desc["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        desc["load_avg_1m"] = None
    return desc
