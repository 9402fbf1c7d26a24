"""Pack the demo apps' assets: model file, manifest, gallery index and sample photos.

    dp-search bundle --target web --model runs/export/model --index catalogue.dpindex \\
        --out web_demo/bundle --sample photos/q1.jpg --sample photos/q2.jpg
    python -m deepproduct.sdk.bundle --model runs/export/model --index catalogue.dpindex \\
        --target all --samples photos/q1.jpg photos/q2.jpg        # every demo at once

writes, for each target, a ``bundle/`` folder the demo app loads as-is:

=========  ==============================================  ===========================
target     default folder (relative to --repo)             model artefact copied
=========  ==============================================  ===========================
web        web_demo/bundle/                                ONNX (``model.onnx``)
android    android_demo/app/src/main/assets/bundle/        TFLite (``.tflite``)
ios        ios_demo/DeepProductDemo/Assets/bundle/         Core ML (``.mlpackage``)
=========  ==============================================  ===========================

Android can ship the ExecuTorch ``.pte`` instead (``--runtime executorch``; the demo's README
shows the ExecuTorch AAR path beside LiteRT).

Each bundle holds ``bundle.json`` (what the apps read first: ``manifest``, ``manifest_schema``, ``index``,
``models`` [{file, format, precision}], ``samples`` [{file, product_id}] and ``thumbnails``
{size, products: {product_id: file}}, the same schema ``dp-search bundle`` writes, plus
provenance), the exporter's ``manifest.json`` unchanged, the one model artefact the platform runs,
``catalogue.dpindex``, ``samples/`` and ``thumbs/`` (one small JPEG per catalogue product). Before writing anything it checks what the apps would
otherwise only discover on a phone: the index's embedding space equals the manifest's, the
index's dimension equals the model's, the artefact's SHA-256 equals the manifest's, and the
index file passes its checksum. A bundle is assembled in a temporary sibling folder and renamed
into place, so an interrupted run never leaves a half-written bundle behind.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .fileio import swap_folder
from .gallery_index import GalleryIndex
from .locking import folder_lock, ordinary_dir_mode
from .model_manifest import (
    SCHEMA_FILENAME,
    ManifestError,
    ModelManifest,
    check_artefact_files,
    load_model_manifest,
    schema_path,
)
from .output_policy import OutputRefused, check_inputs
from .preprocessing import is_image_path
from .version import __version__

BUNDLE_FORMAT = "deepproduct-demo-bundle"
BUNDLE_VERSION = 1
INDEX_NAME = "catalogue.dpindex"

#: target -> (artefact format, default folder relative to the repository root)
TARGETS = {
    "web": ("onnx", "web_demo/bundle"),
    "android": ("tflite", "android_demo/app/src/main/assets/bundle"),
    "ios": ("coreml", "ios_demo/DeepProductDemo/Assets/bundle"),
}
#: target -> other artefact formats its app can run instead (``runtime=``): Android's ExecuTorch
#: AAR runs the XNNPACK ``.pte`` (android_demo/README.md).
ALTERNATIVE_FORMATS = {"android": ("executorch",)}


class BundleError(ValueError):
    """The inputs cannot make a consistent bundle; the message says which file and why."""


class BundleRefused(BundleError, OutputRefused):
    """``--out`` is not ours to replace (a user's folder, a file, a symlink, a bundle holding a
    user's file): the output policy's refusal, exit 3 like every other refused output."""


#: Thumbnail side in pixels: a shopping app's result row shows ~64-96 px (2x for retina still fits).
DEFAULT_THUMBNAIL_SIZE = 96
THUMBNAIL_DIR = "thumbs"


#: Written into a bundle being assembled; only folders carrying it are removed as stale leftovers.
PARTIAL_MARKER = ".deepproduct-partial-bundle"


def is_bundle(folder: Path) -> bool:
    """True for a folder this tool wrote: a ``bundle.json`` (a real file) naming our format."""
    marker = folder / "bundle.json"
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but a missing/empty folder or a bundle we wrote (never lose data)."""
    if out_dir.is_symlink():
        raise BundleRefused(out_dir, "is a symlink; give the folder it points to, or another --out")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise BundleRefused(out_dir, "exists and is not a folder; refusing to replace it")
    if any(out_dir.iterdir()) and not is_bundle(out_dir):
        raise BundleRefused(out_dir, "not empty and not a bundle written by dp-search bundle (no bundle.json); "
                                      "refusing to replace it -- empty it or choose another --out")
    extra = _files_not_listed(out_dir) if any(out_dir.iterdir()) else []
    if extra:  # a user's file added to a bundle (or a folder with a hand-made bundle.json): never deleted
        raise BundleRefused(out_dir, f"holds {len(extra)} file(s) its bundle.json does not list ({extra[0]}"
                                      f"{', ...' if len(extra) > 1 else ''}); refusing to replace it -- move them away")


def _files_not_listed(out_dir: Path) -> list[str]:
    """Files under a bundle folder that its ``bundle.json`` does not account for."""
    try:
        doc = json.loads((out_dir / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["bundle.json"]
    listed = {"bundle.json", str(doc.get("manifest", "")), str(doc.get("manifest_schema", "")), str(doc.get("index", ""))}
    listed |= {str(m.get("file", "")) for m in doc.get("models", []) if isinstance(m, dict)}
    listed |= {str(s.get("file", "")) for s in doc.get("samples", []) if isinstance(s, dict)}
    thumbs = (doc.get("thumbnails") or {}).get("products") if isinstance(doc.get("thumbnails"), dict) else None
    listed |= {str(v) for v in (thumbs or {}).values()}
    out = []
    for p in sorted(out_dir.rglob("*")):
        rel = p.relative_to(out_dir).as_posix()
        if p.is_dir() and not p.is_symlink():
            continue
        if rel in listed or any(rel.startswith(d.rstrip("/") + "/") for d in listed if d.endswith(".mlpackage")):
            continue
        out.append(rel)
    return out


def _remove_stale(out_dir: Path) -> None:
    """Leftovers of an interrupted run for this target (we hold the folder lock, so none is live)."""
    # Never by name alone: a half-written folder carries PARTIAL_MARKER; a complete bundle counts as
    # a leftover only under swap_folder's ``.OUT.old-*`` name. A user's ``.web.backup/`` holding a
    # bundle is never touched.
    old_prefix = f".{out_dir.name}.old-"
    for p in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.*"):
        if p.is_dir() and not p.is_symlink() and (
                (p / PARTIAL_MARKER).is_file() or (p.name.startswith(old_prefix) and is_bundle(p))):
            shutil.rmtree(p, ignore_errors=True)


def check_sample(path: Path, root: Path | None) -> Path:
    """A sample photo: a real image file (no symlink), inside ``root`` when the rows came from one."""
    if path.is_symlink():
        raise BundleError(f"{path}: sample photo is a symlink; refusing to copy what it points to")
    if root is not None:
        real, base = path.resolve(), root.resolve()
        if base not in real.parents:
            raise BundleError(f"{path}: sample photo lies outside the data root {root}")
    if not path.is_file():
        raise BundleError(f"{path}: sample photo not found (or not a regular file)")
    if not is_image_path(path):
        raise BundleError(f"{path}: sample photo is not an image file (.jpg, .png, .webp, ...)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BundleError(f"{path}: sample photo is not a readable image ({exc})") from None
    return path


def check_pair(manifest: ModelManifest, index_path: Path) -> GalleryIndex:
    """Load the index (checksum verified) and refuse it unless it belongs to this model."""
    index = GalleryIndex.load(index_path, expected_space_id=manifest.embedding_space_id)
    if not index.embedding_space_id:
        raise BundleError(f"{index_path}: the index records no embedding space; rebuild it with "
                          f"dp-search build so the apps can check it against {manifest.path}")
    if index.dim != manifest.embedding_dim:
        raise BundleError(f"{index_path}: {index.dim}-dimensional index but the model "
                          f"({manifest.path}) outputs {manifest.embedding_dim}")
    return index


def write_bundle(model_dir: str | Path, index_path: str | Path, out_dir: str | Path, target: str,
                 samples: Sequence[str | Path | tuple[str | Path, str]] = (), precision: str = "fp32",
                 sample_root: str | Path | None = None, runtime: str | None = None,
                 thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE) -> Path:
    """Assemble one target's bundle in ``out_dir`` (replaced whole); returns ``out_dir``.

    ``thumbnail_size``: the side of each product's catalogue thumbnail (0: none); see
    :func:`write_thumbnails`.

    ``samples``: photo paths, or (path, product_id) pairs when the right answer is known;
    with ``sample_root`` (the data set they were listed from) each must lie inside it.
    ``out_dir`` must be missing, empty or a bundle this function wrote: anything else is refused.
    """
    if target not in TARGETS:
        raise BundleError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    allowed = (TARGETS[target][0], *ALTERNATIVE_FORMATS.get(target, ()))
    if runtime is not None and runtime not in allowed:
        raise BundleError(f"the {target} demo runs {' or '.join(allowed)} models, not {runtime!r}")
    fmt = runtime or TARGETS[target][0]
    model_dir = Path(model_dir)
    chosen = None
    if model_dir.suffix.lower() != ".json" and (model_dir.is_file() or model_dir.suffix == ".mlpackage"):
        # One artefact named directly: its folder's manifest describes it.
        manifest = load_model_manifest(model_dir.parent)
        chosen = manifest.artefact_for_file(model_dir)
        if runtime is None and chosen.format in allowed:
            fmt = chosen.format  # e.g. a .pte named directly for android
        if chosen.format != fmt:
            raise BundleError(f"{model_dir} is in {chosen.format} format, but the {target} demo runs {fmt}")
    else:
        manifest = load_model_manifest(model_dir)
    index_path = Path(index_path)
    index = check_pair(manifest, index_path)
    try:
        artefact = chosen or manifest.artefact(fmt, precision)
    except ManifestError as exc:
        raise BundleError(f"{target} bundle needs a {fmt} model: {exc}") from exc
    try:
        src = check_artefact_files(manifest, artefact)  # hashes, and for an .mlpackage every file, no symlinks
    except ManifestError as exc:
        raise BundleError(str(exc)) from None
    pairs = [(Path(s[0]), s[1]) if isinstance(s, tuple) else (Path(s), None) for s in samples]
    root = Path(sample_root) if sample_root is not None else None
    for s, _ in pairs:
        check_sample(s, root)

    out_dir = Path(out_dir)
    try:  # the output policy: never the model folder, the index or a sample photo (docs/threat-model.md)
        check_inputs(out_dir, [manifest.directory, index_path, *(s for s, _ in pairs)], "bundle folder (--out)")
    except OutputRefused as exc:
        raise BundleError(str(exc)) from None
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir.parent, out_dir, BundleError):
        check_replaceable(out_dir)  # again under the lock: another run may have written meanwhile
        _remove_stale(out_dir)
        _assemble(manifest, artefact, src, index_path, pairs, out_dir, target, index, thumbnail_size)
    return out_dir


def write_thumbnails(index: GalleryIndex, folder: Path, size: int) -> tuple[dict[str, str], int]:
    """One small JPEG per product -- its first catalogue image in index order -- under
    ``folder/thumbs/``, so an app shows products, not just rows, without any network access.

    Files are named by the product's position among the sorted product ids (ids are arbitrary
    strings: never part of a path). Images are found as the contact sheet finds them: the index's
    ``image_root`` plus the item's ``image``, confined to that root. Unreadable or missing images
    are skipped. Returns ``({product_id: "thumbs/NNNNNN.jpg"}, skipped)``.
    """
    from PIL import Image

    from .contact_sheet import gallery_image_path
    from .preprocessing import ImageDecodeError, decode_image

    root = index.info.get("image_root")
    root_path = Path(root) if isinstance(root, str) and root else None
    first: dict[str, str | None] = {}
    for pid, item in zip(index.product_ids, index.metadata, strict=True):
        if pid not in first or first[pid] is None:
            first[pid] = item.get("image") if isinstance(item.get("image"), str) else None
    out: dict[str, str] = {}
    skipped = 0
    for n, pid in enumerate(sorted(first)):
        path = gallery_image_path(root_path, first[pid])
        if path is None:
            skipped += 1
            continue
        try:
            rgb = decode_image(path)
        except ImageDecodeError:
            skipped += 1
            continue
        if rgb.dtype != np.uint8:
            rgb = np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
        img = Image.fromarray(rgb)
        img.thumbnail((size, size))
        rel = f"{THUMBNAIL_DIR}/{n:06d}.jpg"
        (folder / THUMBNAIL_DIR).mkdir(exist_ok=True)
        img.save(folder / rel, "JPEG", quality=82, optimize=True)
        out[pid] = rel
    return out, skipped


def _assemble(manifest: ModelManifest, artefact, src: Path, index_path: Path,
              pairs: list[tuple[Path, str | None]], out_dir: Path, target: str, index: GalleryIndex,
              thumbnail_size: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (tmp / PARTIAL_MARKER).touch()
        os.chmod(tmp, ordinary_dir_mode())  # mkdtemp's 0700 would hide the bundle from a web server
        shutil.copy2(manifest.path, tmp / "manifest.json")
        shutil.copy2(schema_path(), tmp / SCHEMA_FILENAME)  # the apps validate the manifest against it
        dst_model = tmp / artefact.file
        dst_model.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst_model)
        else:
            shutil.copy2(src, dst_model)
        shutil.copy2(index_path, tmp / INDEX_NAME)
        names: list[str] = []
        sample_rows = []
        if pairs:
            (tmp / "samples").mkdir()
        for s, product_id in pairs:
            name = s.name
            while name in names:  # two photos with one name from different folders
                name = f"{len(names)}_{s.name}"
            shutil.copy2(s, tmp / "samples" / name)
            names.append(name)
            sample_rows.append({"file": f"samples/{name}", "product_id": product_id})
        descriptor = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "created_by": f"deepproduct {__version__}",
            "target": target,
            "manifest": "manifest.json",
            "manifest_schema": SCHEMA_FILENAME,
            "index": INDEX_NAME,
            "models": [{"file": artefact.file, "format": artefact.format, "precision": artefact.precision}],
            "embedding_space_id": manifest.embedding_space_id,
            "samples": sample_rows,
        }
        if thumbnail_size > 0:
            thumbs, _skipped = write_thumbnails(index, tmp, thumbnail_size)
            if thumbs:
                descriptor["thumbnails"] = {"size": thumbnail_size, "products": thumbs}
        (tmp / "bundle.json").write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")
        (tmp / PARTIAL_MARKER).unlink()
        swap_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deepproduct.sdk.bundle",
                                description="Pack model, manifest, index and sample photos into the demo apps.")
    p.add_argument("--model", required=True, help="exported model folder (holding manifest.json)")
    p.add_argument("--index", required=True, help=".dpindex built with this model (dp-search build)")
    p.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    p.add_argument("--samples", nargs="*", default=[], help="a few query photos to ship with the demo")
    p.add_argument("--precision", default="fp32", help="artefact precision to ship (fp32, fp16, int8)")
    p.add_argument("--repo", default=".", help="repository root for the default folders")
    p.add_argument("--out", help="write to this folder instead (only with a single --target)")
    args = p.parse_args(argv)
    targets = list(TARGETS) if args.target == "all" else [args.target]
    if args.out and len(targets) != 1:
        p.error("--out needs a single --target")
    try:
        if args.target == "all":
            # Only the platforms the export produced a model for (e.g. no Core ML off macOS tools).
            have = {(a.format, a.precision) for a in load_model_manifest(args.model).artefacts}
            skipped = [t for t in targets if (TARGETS[t][0], args.precision) not in have]
            for t in skipped:
                print(f"{t}: skipped (no {TARGETS[t][0]}/{args.precision} artefact in the manifest)")
            targets = [t for t in targets if t not in skipped]
            if not targets:
                raise BundleError(f"{args.model}: no artefact for any demo at precision {args.precision}")
        for t in targets:
            out = Path(args.out) if args.out else Path(args.repo) / TARGETS[t][1]
            write_bundle(args.model, args.index, out, t, args.samples, args.precision)
            print(f"{t}: {out}")
    except (BundleError, ManifestError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
