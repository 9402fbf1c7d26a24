"""Write, hash and validate ``manifest.json`` (schema: manifest.schema.json, docs/manifest.md).

The manifest is the one thing every consumer reads (the SDK through
``deepproduct.sdk.model_manifest``): the input contract, the embedding-space id, every artefact
with its layout and sha256, the tool versions that made them and the parity figures that prove
them. A directory artefact (.mlpackage) is hashed as the sha256 of its ``sha256sum``-style
listing (``<sha256>  <relative path>\\n`` per file, sorted by path), and every file of the folder
is listed with its own hash under ``files``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import Any

from deepproduct.sdk.model_manifest import MANIFEST_FILENAME, MANIFEST_FORMAT, MANIFEST_VERSION, sha256_file

SCHEMA_PATH = Path(__file__).resolve().parent / "manifest.schema.json"
TOOL_PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "litert-torch", "ai-edge-litert",
                 "coremltools", "numpy", "Pillow", "deepproduct")


def sha256_path(path: Path) -> str:
    """A file's sha256, or a directory's: sha256 of its sorted ``sha256sum`` listing."""
    if path.is_file():
        return sha256_file(path)
    listing = "".join(f"{sha256_file(p)}  {p.relative_to(path).as_posix()}\n"
                      for p in sorted(path.rglob("*"), key=lambda q: q.relative_to(path).as_posix())
                      if p.is_file())
    return hashlib.sha256(listing.encode()).hexdigest()


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def file_listing(folder: Path) -> list[dict]:
    """Every file under ``folder`` except the manifest itself, with sha256 and size."""
    out = []
    for p in sorted(folder.rglob("*"), key=lambda q: q.relative_to(folder).as_posix()):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel != MANIFEST_FILENAME:
            out.append({"path": rel, "sha256": sha256_file(p), "size_bytes": p.stat().st_size})
    return out


def tool_versions(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": f"{sys.platform}-{platform.machine()}"}
    for package in TOOL_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    for key, value in (extra or {}).items():
        if value:
            versions[key] = value
    return versions


def base_manifest() -> dict[str, Any]:
    return {"format": MANIFEST_FORMAT, "manifest_version": MANIFEST_VERSION}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Fill ``files`` and artefact hashes, validate, and write ``manifest.json``."""
    for artefact in manifest["artefacts"]:
        path = folder / artefact["file"]
        artefact["sha256"] = sha256_path(path)
        artefact["size_bytes"] = size_of(path)
    manifest["files"] = file_listing(folder)
    validate(manifest)
    target = folder / MANIFEST_FILENAME
    target.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return target


def validate(manifest: dict[str, Any]) -> None:
    """JSON Schema validation; raises ``jsonschema.ValidationError`` with the failing path."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(manifest)


def check_hashes(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Every mismatch between the manifest and the files on disk (empty list: all match)."""
    problems: list[str] = []
    for entry in manifest.get("files", []):
        path = folder / entry["path"]
        if not path.is_file():
            problems.append(f"missing file {entry['path']}")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"sha256 mismatch for {entry['path']}")
    for artefact in manifest.get("artefacts", []):
        path = folder / artefact["file"]
        if not path.exists():
            problems.append(f"missing artefact {artefact['file']}")
        elif sha256_path(path) != artefact.get("sha256"):
            problems.append(f"sha256 mismatch for artefact {artefact['file']}")
    listed = {e["path"] for e in manifest.get("files", [])}
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel != MANIFEST_FILENAME and rel not in listed:
            problems.append(f"unlisted file {rel}")
    return problems
