"""Build, write, hash and validate ``manifest.json`` (schema: manifest.schema.json, docs/manifest.md).

One builder for every manifest: :func:`build_manifest` (what ``dp-export`` writes) and
:func:`minimal_manifest` (the smallest schema-valid one, for test fixtures); nothing else types
the layout by hand. torch-free, so SDK-side fixtures can use it.

The manifest is the one thing every consumer reads (the SDK through
``deepproduct.sdk.model_manifest``): the input contract, the embedding-space id, every artefact
with its layout and sha256, the tool versions that made them and the parity figures that prove
them. A directory artefact (.mlpackage) is hashed as the sha256 of its ``sha256sum``-style
listing (``<sha256>  <relative path>\\n`` per file, sorted by path), and every file of the folder
is listed with its own hash under ``files``.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import Any

from deepproduct.sdk.model_manifest import (  # one file/folder hash for exporter, SDK and bundler
    MANIFEST_FILENAME,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    sha256_file,
    sha256_path,
)
from deepproduct.sdk.output_policy import MARKER_NAME
from deepproduct.sdk.preprocessing import PreprocessingSpec

from .model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo

SCHEMA_PATH = Path(__file__).resolve().parent / "manifest.schema.json"
TOOL_PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "litert-torch", "ai-edge-litert",
                 "coremltools", "executorch", "numpy", "Pillow", "deepproduct")


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def file_listing(folder: Path) -> list[dict]:
    """Every file under ``folder`` except the manifest itself, with sha256 and size."""
    out = []
    for p in sorted(folder.rglob("*"), key=lambda q: q.relative_to(folder).as_posix()):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel not in (MANIFEST_FILENAME, MARKER_NAME):
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


#: Schema-valid stand-ins for an artefact's hash and size until :func:`write_manifest` fills them.
PLACEHOLDER_SHA256 = "0" * 64
PLACEHOLDER_SIZE = 1


def artefact_entry(file: str, format: str, precision: str, layout: str, **fields: Any) -> dict[str, Any]:
    """One ``artefacts[]`` entry; ``fields`` are the format's own (``input_shape``, ``parity``...)."""
    return {"file": file, "format": format, "precision": precision, "layout": layout,
            "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
            "sha256": PLACEHOLDER_SHA256, "size_bytes": PLACEHOLDER_SIZE, **fields}


def build_manifest(info: ModelInfo, *, artefacts: list[dict[str, Any]], parity: dict[str, Any],
                   tools: dict[str, str], source_checkpoint: Path | None = None, created: str | None = None,
                   **sections: Any) -> dict[str, Any]:
    """The whole manifest (the one place its layout is spelt out; docs/manifest.md field by field).

    ``info`` gives the model and input contract (``info.model_config``: the checkpoint's config,
    for pooling, trained input size and weight provenance); ``artefacts`` are
    :func:`artefact_entry` dicts; ``sections`` are appended in order (``warnings``, ``notes``,
    ``timings_s``, ``export_options``). ``files`` and the real hashes come from
    :func:`write_manifest`.
    """
    cfg = info.model_config
    model: dict[str, Any] = {
        "name": info.name, "version": info.version, "backbone": info.backbone,
        "embedding_dim": info.embedding_dim, "architecture": info.architecture,
        "pooling": cfg.get("pooling", "avg"), "input_size": info.input_size,
        "trained_input_size": cfg.get("trained_input_size") or cfg.get("input_size"), "author": info.author,
        "license": info.license, "description": info.description,
        "pretrained_source": cfg.get("pretrained_source")}
    if source_checkpoint is not None:
        model["source_checkpoint"] = {"file": source_checkpoint.name, "sha256": sha256_file(source_checkpoint)}
    manifest = base_manifest()
    if created is not None:
        manifest["created"] = created
    manifest.update({
        "model": model,
        "embedding_space_id": info.embedding_space_id,
        "input": {"name": INPUT_NAME, "colour_order": "RGB", "value_range": [0.0, 1.0],
                  "size": [info.input_size, info.input_size], "dtype": "float32",
                  "normalisation": {"mean": list(info.mean), "std": list(info.std), "applied": "in-graph"}},
        "output": {"name": OUTPUT_NAME, "dim": info.embedding_dim, "dtype": "float32", "l2_normalised": True},
        "preprocessing": info.preprocessing.to_dict(),
        "artefacts": artefacts,
        "parity": parity,
        "tools": tools,
    })
    manifest.update(sections)
    return manifest


def minimal_manifest(artefacts: list[tuple[str, str, str]], *, embedding_dim: int, input_size: int,
                     embedding_space_id: str, name: str = "test-model", version: str = "0",
                     backbone: str = "tiny_cnn", mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
                     std: tuple[float, float, float] = (1.0, 1.0, 1.0),
                     source_checkpoint: Path | None = None) -> dict[str, Any]:
    """The smallest manifest that passes the schema, for test fixtures and self-checks.

    ``artefacts``: ``(file, format, precision)``; the layout is the format's (the exporter table).
    Parity is marked as not measured (one image, ``reference`` says so). Write it with
    :func:`write_manifest`, which fills hashes, sizes and ``files`` and validates it.
    """
    from .formats import EXPORTERS

    info = ModelInfo(name=name, version=version, backbone=backbone, embedding_dim=embedding_dim,
                     input_size=input_size, embedding_space_id=embedding_space_id, mean=mean, std=std,
                     preprocessing=PreprocessingSpec.for_input_size(input_size))
    entries = [artefact_entry(file, fmt, precision, EXPORTERS.get(fmt).layout, parity=[])
               for file, fmt, precision in artefacts]
    return build_manifest(info, artefacts=entries, source_checkpoint=source_checkpoint,
                          parity={"images": 1, "reference": "none (test fixture, parity not measured)",
                                  "passed": True},
                          tools={"python": platform.python_version()}, files=[])


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
        if p.is_file() and rel not in (MANIFEST_FILENAME, MARKER_NAME) and rel not in listed:
            problems.append(f"unlisted file {rel}")
    return problems
