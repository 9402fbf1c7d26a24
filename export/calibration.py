"""Image sets for calibration and parity: a folder, a dataset manifest, or the embedded benchmark.

Quantisation statistics must come from deployment-like photos (calibrating on noise ruined int8
here: cosine 0.3-0.55, docs/export.md), but never from the photos the parity check and the
Recall@1 gate are measured on: that would grade the quantiser on its own calibration data. So
calibration draws from a dataset manifest's **training** split (the embedded benchmark's when no
``--calib`` is given), or from a user's own folder, and every image of the parity set is excluded
by path either way; parity uses the held-out (test) split. Every image goes through
:func:`deepproduct.sdk.preprocessing.preprocess_image`, the one preprocessing of the project.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepproduct.sdk.preprocessing import (
    ImageDecodeError,
    PreprocessingSpec,
    is_image_path,
    preprocess_image,
)

from .errors import CalibrationError

#: Benchmark generated when no --calib is given (a cache beside the temporary export folder).
DEFAULT_BENCHMARK_PRODUCTS = 100
DEFAULT_BENCHMARK_SEED = 0


@dataclass
class ImageSet:
    """Image files, with product ids and domains when a dataset manifest supplied them."""

    paths: list[Path]
    product_ids: list[str] | None = None
    domains: list[str] | None = None  # 'shop' | 'user'
    source: str = ""
    skipped: list[str] = field(default_factory=list)  # unreadable files, with the reason
    excluded: int = 0  # candidates left out because the parity set measures them

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def has_labels(self) -> bool:
        return self.product_ids is not None and self.domains is not None

    def subset(self, index: list[int]) -> ImageSet:
        return ImageSet([self.paths[i] for i in index],
                        [self.product_ids[i] for i in index] if self.product_ids else None,
                        [self.domains[i] for i in index] if self.domains else None,
                        self.source, list(self.skipped), self.excluded)


def _folder_images(folder: Path) -> ImageSet:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return ImageSet([p for p in files if is_image_path(p)] or files, source=str(folder))


def _manifest_images(csv_path: Path, split: str = "test") -> ImageSet:
    from deepproduct.sdk.dataset_manifest import read_dataset_manifest

    try:
        manifest = read_dataset_manifest(csv_path)
    except Exception as exc:  # the reader's own errors name the bad row
        raise CalibrationError(f"{csv_path}: not a readable dataset manifest ({exc})") from exc
    rows = manifest.select(split=split)
    source = f"{csv_path} ({split} split)"
    if not rows:  # e.g. a test-only transfer set: every row (parity images are excluded later)
        rows, source = list(manifest.rows), f"{csv_path} (all rows: no {split} split)"
    return ImageSet([Path(manifest.abspath(r)) for r in rows], [str(r.product_id) for r in rows],
                    [str(r.domain) for r in rows], source=source)


def synthesise_benchmark(out_dir: Path, products: int = DEFAULT_BENCHMARK_PRODUCTS,
                         seed: int = DEFAULT_BENCHMARK_SEED) -> Path:
    """Generate the embedded benchmark (what ``dp-data synth`` writes); returns its manifest.csv."""
    manifest = out_dir / "manifest.csv"
    if manifest.is_file():
        return manifest
    try:
        from deepproduct.training.data.synth import generate_synthetic_dataset

        return Path(generate_synthetic_dataset(out_dir, n_products=products, seed=seed, workers=1))
    except Exception as exc:  # noqa: BLE001 - any generator failure: say how to bypass it
        raise CalibrationError(f"could not generate the default benchmark for calibration ({exc}); "
                               "pass --calib FOLDER_OR_MANIFEST") from exc


def is_manifest(source: str | Path | None) -> bool:
    return source is not None and Path(source).is_file() and Path(source).suffix.lower() == ".csv"


def resolve_image_source(source: str | Path | None, cache_dir: Path, split: str = "test") -> ImageSet:
    """``--calib`` / ``--parity`` value -> the candidate images (not yet checked for readability).

    A manifest (or the embedded benchmark, for ``None``) gives its ``split`` rows; a folder gives
    every image file under it.
    """
    if source is None:
        return _manifest_images(synthesise_benchmark(cache_dir / "benchmark"), split)
    path = Path(source)
    if path.is_dir():
        found = _folder_images(path)
    elif is_manifest(path):
        found = _manifest_images(path, split)
    elif path.exists():
        raise CalibrationError(f"{path}: --calib wants a folder of images or a dataset manifest .csv")
    else:
        raise CalibrationError(f"calibration source not found: {path}")
    if not found.paths:
        raise CalibrationError(f"no images in the calibration source {path}")
    return found


def calibration_source(source: str | Path | None, cache_dir: Path, parity: ImageSet) -> ImageSet:
    """Calibration candidates: the training split (or a folder), minus every parity image.

    ``excluded`` on the result counts the candidates dropped because parity measures them.
    """
    found = resolve_image_source(source, cache_dir, split="train")
    held = {p.resolve() for p in parity.paths}
    keep = [i for i, p in enumerate(found.paths) if p.resolve() not in held]
    kept = found.subset(keep)
    kept.excluded = len(found) - len(keep)
    if not kept.paths:
        raise CalibrationError(f"{found.source}: every image is in the parity set; calibration needs "
                               "other images (pass --calib with a training split or another folder)")
    return kept


def load_tensors(images: ImageSet, spec: PreprocessingSpec, count: int | None = None, *,
                 layout: str = "NCHW", seed: int = 0,
                 select: Callable[[ImageSet, int, int], list[int]] | None = None,
                 require: bool = False) -> tuple[ImageSet, np.ndarray]:
    """Preprocess up to ``count`` readable images; unreadable ones are skipped and listed.

    Raises :class:`CalibrationError` when not one image is readable, or (``require``) when fewer
    than ``count`` are.
    """
    order = (select or sample_indices)(images, count or len(images), seed)
    kept: list[int] = []
    arrays: list[np.ndarray] = []
    skipped: list[str] = []
    for i in order:
        try:
            arrays.append(preprocess_image(images.paths[i], spec, layout))
            kept.append(i)
        except ImageDecodeError as exc:
            skipped.append(str(exc))
        if count and len(kept) >= count:
            break
    if not arrays:
        shown = "; ".join(skipped[:3])
        raise CalibrationError(f"no readable images in {images.source} "
                               f"({len(images)} file(s) tried{': ' + shown if shown else ''})")
    if require and count and len(kept) < count:
        unreadable = f", {len(skipped)} unreadable" if skipped else ""
        raise CalibrationError(f"{images.source}: only {len(kept)} readable calibration images{unreadable}, "
                               f"fewer than --calib-count {count}")
    chosen = images.subset(kept)
    chosen.skipped = skipped
    chosen.excluded = images.excluded
    return chosen, np.concatenate(arrays, axis=0)


def sample_indices(images: ImageSet, count: int, seed: int) -> list[int]:
    """A seeded shuffle of every index (readability is checked later, in this order)."""
    order = list(range(len(images)))
    random.Random(seed).shuffle(order)
    return order


def whole_product_indices(images: ImageSet, count: int, seed: int) -> list[int]:
    """Indices of whole products (all their images) up to about ``count`` images.

    Recall@1 needs each query's product in the gallery, so a parity subset keeps products whole;
    without labels it falls back to a seeded sample.
    """
    if not images.has_labels:
        return sample_indices(images, count, seed)
    by_product: dict[str, list[int]] = {}
    for i, pid in enumerate(images.product_ids or []):
        by_product.setdefault(pid, []).append(i)
    products = sorted(by_product)
    random.Random(seed).shuffle(products)
    out: list[int] = []
    for pid in products:
        if out and len(out) + len(by_product[pid]) > count:
            break
        out.extend(by_product[pid])
    return out


def calibration_record(chosen: ImageSet, requested: int, seed: int) -> dict:
    """The manifest's ``calibration`` object: what the int8 statistics were computed from."""
    return {"source": chosen.source, "images": len(chosen), "requested": requested, "seed": seed,
            "unreadable_skipped": len(chosen.skipped), "parity_images_excluded": chosen.excluded}
