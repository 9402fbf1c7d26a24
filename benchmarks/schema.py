"""The benchmark record: one JSON object per line, one measurement per object (docs/benchmarks.md).

Host runs, the Android runner's converter and the iOS converter all write this one shape, so
``dp-bench report`` can merge results from anywhere without knowing which tool produced them.
Every record carries ``schema_version``; a reader refuses versions newer than it knows, and a
new optional field never bumps the version (readers ignore what they do not know).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))

#: Fields every record has, whatever its kind.
COMMON_FIELDS: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "kind": (str,),
    "source": (str,),  # host | android | ios
    "run_id": (str,),
    "timestamp": (str,),
    "machine": (dict,),
}

#: Required fields per kind (beyond the common ones) and the JSON types they may take.
KIND_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    # Model latency at one batch size and thread count.
    "latency": {
        "artefact": (str,), "format": (str,), "precision": (str,), "runtime": (str,),
        "threads": (int,), "batch": (int,), "runs": (int,), "warmup": (int,),
        # median/p90 are null where a device tool reports only min/avg/max (benchmark_model).
        "median_ms": _OPT_NUM, "p90_ms": _OPT_NUM, "min_ms": _NUM, "mean_ms": _NUM, "images_per_s": _NUM,
    },
    # Size on disk, parameters and multiply-accumulates of one artefact.
    "model_size": {
        "artefact": (str,), "format": (str,), "precision": (str,), "file": (str,),
        "size_bytes": (int,), "params": (int, type(None)), "macs": (int, type(None)),
    },
    # Retrieval accuracy of one artefact on the held-out split, and its agreement with PyTorch.
    "accuracy": {
        "artefact": (str,), "format": (str,), "precision": (str,), "runtime": (str,),
        "recall@1": _NUM, "recall@5": _NUM, "map@r": _NUM, "queries": (int,), "gallery": (int,),
        "cosine_to_reference": _OPT_NUM, "reference": (str,),
    },
    # One exact-search configuration: implementation x storage x gallery size x batch.
    "search": {
        "impl": (str,), "storage": (str,), "gallery_size": (int,), "dim": (int,), "batch": (int,),
        "k": (int,), "threads": (int,), "runs": (int,),
        "median_ms": _NUM, "p90_ms": _NUM, "min_ms": _NUM, "index_bytes": (int,),
        "bytes_scanned": (int,), "bandwidth_bound_ms": _OPT_NUM,
    },
    # The machine's measured copy bandwidth (the search's memory-bandwidth bound).
    "bandwidth": {"copy_gb_per_s": _NUM, "bytes": (int,), "method": (str,)},
    # A measurement that could not be taken here, and why (Core ML on Linux, a missing runtime).
    "skipped": {"artefact": (str,), "what": (str,), "reason": (str,)},
    # One catalogue build end to end: the one-process build or --engine ray with some actors
    # (dp-bench distributed); ratio_to_local: its images/s over the one-process build's at equal cores.
    "distributed_build": {
        "engine": (str,), "actors": (int,), "threads": (int,), "images": (int,), "shards": (int,),
        "wall_s": _NUM, "images_per_s": _NUM, "images_per_s_per_actor": _OPT_NUM, "ratio_to_local": _NUM,
        "cores": (int,), "load_avg_1m": _NUM,
    },
    # One op type's share of an ONNX Runtime profile.
    "op_profile": {
        "artefact": (str,), "threads": (int,), "op_type": (str,), "nodes": (int,),
        "total_ms_per_run": _NUM, "share": _NUM,
    },
}

SOURCES = ("host", "android", "ios")


class RecordError(ValueError):
    """A record that does not follow the schema; the message names the field."""


def new_run_id() -> str:
    """Groups the records of one invocation (a report can tell two runs of the same thing apart)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_record(kind: str, *, machine: dict[str, Any], run_id: str, source: str = "host",
                **fields: Any) -> dict[str, Any]:
    """A validated record; raises :class:`RecordError` when a required field is missing or mistyped."""
    rec = {"schema_version": SCHEMA_VERSION, "kind": kind, "source": source, "run_id": run_id,
           "timestamp": now_iso(), "machine": machine, **fields}
    validate_record(rec)
    return rec


def validate_record(rec: dict[str, Any]) -> None:
    """Check the common fields and the kind's required fields (extra fields are allowed)."""
    if not isinstance(rec, dict):
        raise RecordError(f"a record must be a JSON object, got {type(rec).__name__}")
    version = rec.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise RecordError(f"schema_version must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise RecordError(f"schema_version {version} is newer than this reader ({SCHEMA_VERSION})")
    kind = rec.get("kind")
    if kind not in KIND_FIELDS:
        raise RecordError(f"unknown record kind {kind!r}; expected one of {', '.join(KIND_FIELDS)}")
    for name, types in {**COMMON_FIELDS, **KIND_FIELDS[kind]}.items():
        if name not in rec:
            raise RecordError(f"{kind} record lacks the field {name!r}")
        value = rec[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise RecordError(f"{kind} record: field {name!r} has type {type(value).__name__}, "
                              f"expected {'/'.join(t.__name__ for t in types)}")
    if rec["source"] not in SOURCES:
        raise RecordError(f"source must be one of {', '.join(SOURCES)}, got {rec['source']!r}")


def write_records(path: str | os.PathLike, records: Iterable[dict[str, Any]], append: bool = True) -> Path:
    """Append (or write) records as JSON lines; each is validated first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as f:
        for rec in records:
            validate_record(rec)
            f.write(json.dumps(rec, sort_keys=True, allow_nan=False) + "\n")
    return path


def read_jsonl(path: str | os.PathLike, what: str = "records file") -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON-lines file: a regular file only,
    size-capped, each line under the strict JSON grammar (sdk.fileio / sdk.jsonio), because these
    files are untrusted input. The one reader of every records file (dp-bench, paired_recall)."""
    from deepproduct.sdk.fileio import read_text_input
    from deepproduct.sdk.jsonio import loads as json_loads

    out = []
    for n, line in enumerate(read_text_input(path, what).splitlines(), 1):
        if line.strip():
            try:
                rec = json_loads(line)
            except ValueError as exc:
                raise RecordError(f"{path}:{n}: not JSON ({exc})") from None
            if not isinstance(rec, dict):
                raise RecordError(f"{path}:{n}: not a JSON object")
            out.append((n, rec))
    return out


def read_records(paths: Iterable[str | os.PathLike]) -> Iterator[dict[str, Any]]:
    """Records from JSON-lines files, validated; a bad line fails with its file and line number."""
    for p in paths:
        for line_no, rec in read_jsonl(p, "benchmark records file"):
            try:
                validate_record(rec)
            except RecordError as exc:
                raise RecordError(f"{p}:{line_no}: {exc}") from exc
            yield rec
