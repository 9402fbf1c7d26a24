"""Reader for the exported model's ``manifest.json`` (schema: docs/manifest.md).

The exporter writes the manifest; every consumer (SDK embedders, ``dp-search``, demo asset
bundles, ``dp-bench``) learns the input contract and the embedding-space id from it instead of
hard-coding them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .json_schema import SchemaViolation, json_equal
from .json_schema import check as check_schema
from .jsonio import JsonError
from .jsonio import loads as json_loads
from .preprocessing import PreprocessingSpec

MANIFEST_FORMAT = "deepproduct-model-manifest"
MANIFEST_VERSION = 1
MANIFEST_FILENAME = "manifest.json"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks: the hash the manifest records per artefact."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_regular(path: str | Path) -> Any:
    """:func:`deepproduct.sdk.fileio.open_regular` for model artefacts: a FIFO or device named as one
    is a ``ManifestError``."""
    from .fileio import open_regular as _open

    return _open(path, lambda: ManifestError(f"{path}: not a regular file (a FIFO, device or folder); refused"))


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
                       input_name=d["input_name"], output_name=d["output_name"], sha256=d["sha256"], raw=d)
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
        """The artefact inside the model folder; refused if ``file`` (or a symlink) leads outside it."""
        try:
            return resolve_inside(self.directory, artefact.file, "artefact file")
        except ManifestError as exc:
            raise ManifestError(f"{self.path}: {exc}") from None


def _schema() -> dict[str, Any]:
    """export/manifest.schema.json, the one definition of a valid manifest (dp-export writes by it).

    Located without importing ``deepproduct.export`` (which the SDK must not depend on): the
    file ships as that package's data, beside this package in a wheel and in the repository.
    """
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(schema_path().read_text(encoding="utf-8"))
    return _SCHEMA


def schema_path() -> Path:
    """Where manifest.schema.json is installed (``dp-search bundle`` ships a copy to the apps)."""
    spec = importlib.util.find_spec("deepproduct.export")
    for folder in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / SCHEMA_FILENAME
        if candidate.is_file():
            return candidate
    raise ManifestError(f"the model-manifest schema ({SCHEMA_FILENAME}) is not installed; reinstall deepproduct")


_SCHEMA: dict[str, Any] | None = None
SCHEMA_FILENAME = "manifest.schema.json"
#: A manifest is a few kB; anything far larger is not one (and is not read into memory).
MAX_MANIFEST_BYTES = 16 << 20


def confined_relative_path(value: str, what: str) -> str:
    """``value`` as a path inside its folder: relative, ``/``-separated, no ``..``, no drive.

    Why: manifests travel and are edited by hand; an artefact ``file`` of ``../../evil.onnx`` or
    ``/etc/x`` must not make the SDK load, or ``dp-search bundle`` copy, a file outside the
    model folder. Symlinks that leave the folder are refused where the path is opened
    (:meth:`ModelManifest.artefact_path`).
    """
    parts = value.split("/")
    if (not value or value.startswith("/") or "\\" in value or "\x00" in value or ":" in parts[0]
            or any(p in ("", ".", "..") for p in parts)):
        raise ManifestError(f"{what} {value!r} is not a plain relative path inside the model folder")
    return value


def resolve_inside(folder: Path, relative: str, what: str) -> Path:
    """``folder / relative``, refused if it (through symlinks) resolves outside ``folder``."""
    confined_relative_path(relative, what)
    base = folder.resolve()
    target = (folder / relative).resolve()
    if target != base and base not in target.parents:
        raise ManifestError(f"{what} {relative!r} leads outside {folder} (a symlink?)")
    return folder / relative


def _read_manifest_bytes(path: Path) -> bytes:
    """The manifest's bytes (decoded strictly, as UTF-8, by jsonio.loads): a regular file of at most
    MAX_MANIFEST_BYTES -- a FIFO named manifest.json must fail, not block the reader forever."""
    from .fileio import read_regular_bytes

    try:
        return read_regular_bytes(path, "model manifest", MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(f"no model manifest at {path}") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot open the manifest ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ManifestError(str(exc)) from None


#: What this SDK implements (docs/preprocessing.md); a manifest asking for anything else is refused
#: instead of silently preprocessed the default way.
SUPPORTED_PREPROCESSING = {"colour_order": "RGB", "crop": "centre", "value_range": [0, 1]}


def load_model_manifest(path: str | Path) -> ModelManifest:
    """Load ``manifest.json`` (or the directory holding it), strictly: schema, version, paths.

    Every failure is a one-line :class:`ManifestError` naming the file and the field; nothing
    the schema requires is filled in with a default.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILENAME
    try:
        raw = json_loads(_read_manifest_bytes(path))
    except JsonError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: (top level): a model manifest is a JSON object, not {type(raw).__name__}")
    if raw.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: not a DeepProduct model manifest (format={raw.get('format')!r})")
    version = raw.get("manifest_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: manifest version {version!r} is newer than this SDK supports ({MANIFEST_VERSION})"
        )
    if version != MANIFEST_VERSION or isinstance(version, bool):
        raise ManifestError(f"{path}: manifest_version: {version!r} is not a valid version (this SDK reads "
                            f"the integer {MANIFEST_VERSION})")
    try:
        check_schema(raw, _schema())
    except SchemaViolation as exc:
        raise ManifestError(f"{path}: {exc.field}: {exc.problem} (manifest schema)") from None
    pre = raw["preprocessing"]
    for key, want in SUPPORTED_PREPROCESSING.items():
        if not json_equal(pre[key], want):
            raise ManifestError(f"{path}: preprocessing.{key}: {pre[key]!r} is not supported by this SDK "
                                f"(only {want!r}; docs/preprocessing.md)")
    if raw["input"]["colour_order"] != "RGB" or not json_equal(raw["input"]["value_range"], [0, 1]):
        field = "input.colour_order" if raw["input"]["colour_order"] != "RGB" else "input.value_range"
        raise ManifestError(f"{path}: {field}: not supported by this SDK (RGB in [0, 1] only)")
    if pre["resize_shorter"] < pre["input_size"]:
        raise ManifestError(f"{path}: preprocessing.resize_shorter: {pre['resize_shorter']} is smaller than "
                            f"input_size {pre['input_size']}")
    for i, a in enumerate(raw["artefacts"]):
        try:
            confined_relative_path(a["file"], "file")
        except ManifestError as exc:
            raise ManifestError(f"{path}: artefacts[{i}].file: {exc}") from None
    for i, entry in enumerate(raw["files"]):
        try:
            confined_relative_path(entry["path"], "path")
        except ManifestError as exc:
            raise ManifestError(f"{path}: files[{i}].path: {exc}") from None
    model = raw["model"]
    try:
        preprocessing = PreprocessingSpec.from_dict(pre)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{path}: preprocessing: {exc}") from None
    return ModelManifest(
        path=path,
        model_name=model["name"],
        model_version=model["version"],
        backbone=model["backbone"],
        embedding_dim=int(model["embedding_dim"]),
        embedding_space_id=raw["embedding_space_id"],
        preprocessing=preprocessing,
        artefacts=tuple(Artefact.from_dict(a) for a in raw["artefacts"]),
        raw=raw,
    )


def sha256_path(path: str | Path) -> str:
    """A file's sha256, or a directory's (an .mlpackage): sha256 of its sorted ``sha256sum`` listing.

    The exporter records this for directory artefacts; ``dp-search bundle`` recomputes it.
    Symlinks inside a directory are refused (they could point anywhere on the machine).
    """
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    lines = []
    for f in package_files(path):
        lines.append(f"{sha256_file(path / f)}  {f}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def package_files(folder: Path) -> list[str]:
    """Sorted ``/``-relative paths of the regular files under ``folder``; ManifestError on a symlink."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            p = Path(root) / name
            if p.is_symlink():
                raise ManifestError(f"{p}: a symlink inside a model package (refused: it could point anywhere)")
        out += [(Path(root) / n).relative_to(folder).as_posix() for n in files]
    return sorted(out)


def check_artefact_files(manifest: ModelManifest, artefact: Artefact) -> Path:
    """The artefact's path after checking it against the manifest: inside the folder, no symlinks,
    SHA-256 equal; for a directory (.mlpackage) also every file against ``files``, none unlisted.

    The same checks ``dp-export verify`` reports, so a bundle cannot ship what verify would flag.
    """
    src = manifest.artefact_path(artefact)
    if not src.exists():
        raise ManifestError(f"{src}: listed in {manifest.path} but missing")
    if src.is_dir():
        listed = {e["path"]: e["sha256"] for e in manifest.raw.get("files", [])
                  if e["path"].startswith(artefact.file.rstrip("/") + "/")}
        present = {f"{artefact.file.rstrip('/')}/{f}" for f in package_files(src)}
        for rel in sorted(present - set(listed)):
            raise ManifestError(f"{manifest.directory / rel}: not listed in {manifest.path} (added after export?)")
        for rel in sorted(set(listed) - present):
            raise ManifestError(f"{manifest.directory / rel}: listed in {manifest.path} but missing")
        for rel in sorted(listed):
            if sha256_file(manifest.directory / rel) != listed[rel]:
                raise ManifestError(f"{manifest.directory / rel}: SHA-256 differs from {manifest.path}; "
                                    "the package was changed after export (re-export it)")
    if sha256_path(src) != artefact.sha256:
        raise ManifestError(f"{src}: SHA-256 differs from the manifest's; the model file was changed "
                            "after export (re-export it)")
    return src
