"""Catalogue sources for index builds: a folder of product images or a dataset manifest CSV.

Folder layouts (sorted, so a rebuild gives the same item order):

* ``root/<product_id>/**/<image>`` -- one sub-folder per product (several shop images each);
* ``root/<image>`` -- flat, the file stem is the product id;
* optional ``root/products.json`` -- ``{"<product_id>": {"title": ..., "category": ..., "url": ...}}``,
  merged into every item of that product.

A dataset manifest (``sdk_python/dataset_manifest.py``) gives rows with product ids, domain,
split, attributes and tags; the attributes become item metadata, so ``--filter category=mug``
works on data sets that carry an ``attr_category`` column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jsonio import JsonError
from .jsonio import loads as json_loads
from .preprocessing import is_image_path

PRODUCTS_FILE = "products.json"


class CatalogueError(ValueError):
    """A catalogue that cannot be indexed: nothing found, unreadable images without --skip-bad, ..."""


@dataclass(frozen=True)
class CatalogueEntry:
    path: Path
    product_id: str
    metadata: dict[str, Any] = field(default_factory=dict)


def list_catalogue(source: str | os.PathLike, split: str | None = None,
                   domain: str | None = None) -> list[CatalogueEntry]:
    """Entries of a folder or a dataset manifest ``.csv`` (``split``/``domain`` filter the manifest)."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return _from_manifest(source, split, domain)
    if source.is_dir():
        if split or domain:
            raise CatalogueError(f"{source}: --split/--domain select rows of a dataset manifest, "
                                 "not of a folder")
        return _from_folder(source)
    raise CatalogueError(f"{source}: expected a folder of images or a dataset manifest .csv")


def catalogue_root(source: str | os.PathLike) -> Path:
    """The folder that items' ``image`` metadata is relative to (a folder, or a manifest's folder)."""
    source = Path(source)
    return (source.parent if source.is_file() else source).resolve()


def _from_manifest(csv_path: Path, split: str | None, domain: str | None) -> list[CatalogueEntry]:
    from .dataset_manifest import read_dataset_manifest

    manifest = read_dataset_manifest(csv_path)
    entries = []
    for row in manifest.select(split=split, domain=domain):
        meta: dict[str, Any] = {"image": row.path, **row.attributes}
        if row.tags:
            meta["tags"] = list(row.tags)
        meta["domain"] = row.domain
        entries.append(CatalogueEntry(manifest.abspath(row), row.product_id, meta))
    if not entries:
        raise CatalogueError(f"{csv_path}: no rows with split={split!r} and domain={domain!r}")
    return entries


def _from_folder(root: Path) -> list[CatalogueEntry]:
    products: dict[str, dict[str, Any]] = {}
    sidecar = root / PRODUCTS_FILE
    if sidecar.is_file():
        try:  # the strict codec (docs/json.md): deep nesting or NaN is a one-line error, not a traceback
            products = json_loads(sidecar.read_bytes(), source=str(sidecar))
        except JsonError as exc:
            raise CatalogueError(f"{exc} (not valid JSON)") from exc
        if not isinstance(products, dict) or not all(isinstance(v, dict) for v in products.values()):
            raise CatalogueError(f"{sidecar}: expected an object mapping product ids to objects")
    entries = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or not is_image_path(path) or any(p.startswith(".") for p in rel.parts):
            continue
        product = rel.parts[0] if len(rel.parts) > 1 else path.stem
        meta = {**products.get(product, {}), "image": rel.as_posix()}
        entries.append(CatalogueEntry(path, product, meta))
    if not entries:
        raise CatalogueError(f"{root}: no images found (.jpg, .png, .webp, ...)")
    return entries


def format_failures(failures: Sequence[tuple[str, str]], limit: int = 20) -> str:
    lines = [f"  {msg}" if msg.startswith(path) else f"  {path}: {msg}" for path, msg in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more")
    return "\n".join(lines)
