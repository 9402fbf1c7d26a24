"""Reader for the exported model's ``manifest.json`` (schema: docs/manifest.md).

The exporter writes the manifest; every consumer (SDK embedders, ``dp-search``, demo asset
bundles, ``dp-bench``) learns the input contract and the embedding-space id from it instead of
hard-coding them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .preprocessing import PreprocessingSpec

MANIFEST_FORMAT = "deepproduct-model-manifest"
MANIFEST_VERSION = 1
MANIFEST_FILENAME = "manifest.json"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks: the hash the manifest records per artefact."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ManifestError(ValueError):
    """A manifest that is missing, malformed, or from a newer format version."""


@dataclass(frozen=True)
class Artefact:
    """One exported model file and how to feed it."""

    file: str
    format: str  # onnx | tflite | coreml
    precision: str  # fp32 | fp16 | int8 | ...
    layout: str  # NCHW | NHWC | image
    input_name: str
    output_name: str
    sha256: str
    raw: dict

    @classmethod
    def from_dict(cls, d: dict) -> Artefact:
        try:
            return cls(file=d["file"], format=d["format"], precision=d["precision"], layout=d["layout"],
                       input_name=d.get("input_name", "image"), output_name=d.get("output_name", "embedding"),
                       sha256=d.get("sha256", ""), raw=d)
        except KeyError as exc:
            raise ManifestError(f"artefact entry lacks the field {exc.args[0]!r}: {d}") from exc


@dataclass(frozen=True)
class ModelManifest:
    """The parts of manifest.json that running a model needs; ``raw`` keeps the rest."""

    path: Path
    model_name: str
    model_version: str
    backbone: str
    embedding_dim: int
    embedding_space_id: str
    preprocessing: PreprocessingSpec
    artefacts: tuple[Artefact, ...]
    raw: dict[str, Any]

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def input_size(self) -> int:
        return self.preprocessing.input_size

    def artefact(self, format: str, precision: str = "fp32") -> Artefact:
        for a in self.artefacts:
            if a.format == format and a.precision == precision:
                return a
        have = ", ".join(f"{a.format}/{a.precision}" for a in self.artefacts) or "none"
        raise ManifestError(f"{self.path}: no {format}/{precision} artefact (have: {have})")

    def artefact_for_file(self, file: str | Path) -> Artefact:
        name = Path(file).name
        for a in self.artefacts:
            if Path(a.file).name == name:
                return a
        raise ManifestError(f"{self.path}: {name} is not listed among the manifest's artefacts")

    def artefact_path(self, artefact: Artefact) -> Path:
        return self.directory / artefact.file


def load_model_manifest(path: str | Path) -> ModelManifest:
    """Load ``manifest.json`` (or the directory holding it) and check its format version."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILENAME
    if not path.is_file():
        raise ManifestError(f"no model manifest at {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if raw.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: not a DeepProduct model manifest (format={raw.get('format')!r})")
    version = raw.get("manifest_version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: manifest version {version!r} is newer than this SDK supports ({MANIFEST_VERSION})"
        )
    try:
        model = raw["model"]
        return ModelManifest(
            path=path,
            model_name=model["name"],
            model_version=str(model["version"]),
            backbone=model["backbone"],
            embedding_dim=int(model["embedding_dim"]),
            embedding_space_id=raw["embedding_space_id"],
            preprocessing=PreprocessingSpec.from_dict(raw["preprocessing"]),
            artefacts=tuple(Artefact.from_dict(a) for a in raw.get("artefacts", [])),
            raw=raw,
        )
    except KeyError as exc:
        raise ManifestError(f"{path}: missing required field {exc.args[0]!r}") from exc
