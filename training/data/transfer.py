"""The real-image transfer benchmark (``dp-data transfer``): consumer-to-shop retrieval on real
photographs and photographed objects that installed packages ship.

Why it exists: the procedural benchmark (``synth``) measures what fine-tuning learns on the
training distribution; this one measures whether it *transfers* to real imagery, which is what an
app developer ships. It is for measurement and for choosing recipe hyper-parameters only, never
training data: every row is ``split=test``, product ids start with ``tr-`` and
:func:`check_disjoint` refuses a transfer manifest that shares products with a training manifest.

Products (``transfer_sources``): photographed objects cut out of their background (Tux Paint's
photo stamps) and distinct square regions of real photographs (scikit-image, scikit-learn,
matplotlib sample photographs, Ubuntu's photo wallpapers). Sources are mixed round-robin, so each
contributes until it runs out.

Per product: one **shop image** -- the object (or the region, as a flat print) centred and
front-on on a plain light studio backdrop with a soft shadow (``synth_photo.shop_photo``) -- and
two **phone photos** (3:4 portrait):

* a real photograph as the surface (never the product's own photo), partly defocused, with one to
  three other products lying at the frame's edge (clutter);
* or, for a photo region, half the time the region re-photographed *in its own scene*: the camera
  sees its surroundings (zoom-out 1.3-2x) from an oblique angle;
* perspective and rotation, scale change and off-centre framing;
* colour cast, exposure, uneven light (``synth_photo._lighting``), defocus or hand-shake blur
  (sometimes both), luminance + chroma noise;
* occlusion: a finger at the rim (half the photos) or a piece of another real photo over a corner
  (a third);
* JPEG quality 25-75 with 4:2:0 chroma.

Deterministic for a seed *and the installed source files*: ``transfer.json`` records each file's
sha256, so two machines can tell whether they built the same set.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from deepproduct.sdk.dataset_manifest import DatasetRow, read_dataset_manifest, write_dataset_manifest
from deepproduct.sdk.model_manifest import sha256_file
from deepproduct.training.atomic import write_text_atomic
from deepproduct.training.data.staging import staged_images, staging_path
from deepproduct.training.data.synth_photo import (
    _blur,
    _lighting,
    _occluder,
    encode_jpeg,
    perspective_coefficients,
    place,
    shop_photo,
)
from deepproduct.training.data.transfer_sources import (
    SOURCES,
    Product,
    TransferSourceError,
    available_sources,
    cutout_product,
    folder_files,
    load_image,
    photo_regions,
    region_sprite,
    shrink_photo,
    slug,
    unique_id,
)

GENERATOR_VERSION = 1  # bump when the same seed and sources would give different images
MANIFEST_NAME = "manifest.csv"
IMAGES_DIR = "images"
PARAMS_NAME = "transfer.json"
PRODUCT_PREFIX = "tr-"
_MARKER = ".deepproduct-transfer"
SHOP_JPEG_QUALITY = 92
N_QUERIES = 2


@dataclass(frozen=True)
class SourceSet:
    """The files to build from: registered package sources and/or user folders, per source name."""

    files: dict[str, list[Path]]

    @classmethod
    def resolve(cls, names: Sequence[str] | None = None, folders: Sequence[Path] = ()) -> SourceSet:
        """``names`` of registered sources (None = every installed one) plus extra folders (each its
        own source, named ``dir-<folder name>``)."""
        installed = available_sources()
        if names is None:
            files = dict(installed)
        else:
            files = {}
            for n in names:
                if n not in SOURCES:
                    raise TransferSourceError(f"unknown source {n!r}; registered: {', '.join(SOURCES)}")
                if n not in installed:
                    raise TransferSourceError(f"source {n!r} is not installed ({SOURCES[n].package})")
                files[n] = installed[n]
        for folder in folders:
            files[f"dir-{slug(Path(folder).name)}"] = folder_files(Path(folder))
        if not files:
            raise TransferSourceError("no transfer sources installed and no --source folder given "
                                      "(see docs/transfer-benchmark.md for the packages)")
        return cls(files)


def _collect(sources: SourceSet, seed: int) -> tuple[list[Product], list[Image.Image], list[dict]]:
    """All candidate products (per source, in a seed-shuffled order), the photos (backgrounds and
    region parents) and the file records for ``transfer.json``."""
    per_source: dict[str, list[Product]] = {}
    photos: list[Image.Image] = []
    records = []
    taken: set[str] = set()
    for s_index, (name, files) in enumerate(sorted(sources.files.items())):
        products: list[Product] = []
        for f_index, path in enumerate(files):
            image = load_image(path)
            records.append({"source": name, "file": str(path), "sha256": sha256_file(path)})
            stem = slug(path.stem)
            if image.mode == "RGBA":
                p = cutout_product(path, image, name, "")
                if p is not None:
                    p.product_id = unique_id(f"{PRODUCT_PREFIX}{name}-{stem}", taken)
                    products.append(p)
                continue
            photo = shrink_photo(image)
            if photo is None:
                continue
            photo_index = len(photos)
            photos.append(photo)
            rng = np.random.default_rng([seed, 5, s_index, f_index])
            for k, box in enumerate(photo_regions(photo, rng)):
                pid = unique_id(f"{PRODUCT_PREFIX}{name}-{stem}-r{k}", taken)
                products.append(Product(pid, name, "region", path, region_sprite(photo, box), photo_index, box))
        order = np.random.default_rng([seed, 6, s_index]).permutation(len(products))
        per_source[name] = [products[i] for i in order]
    if not photos:
        raise TransferSourceError("the transfer sources hold no photograph to use as background "
                                  f"(sources: {', '.join(sorted(sources.files))})")
    chosen: list[Product] = []
    queues = [list(v) for _, v in sorted(per_source.items())]
    while any(queues):
        for q in queues:
            if q:
                chosen.append(q.pop(0))
    return chosen, photos, records


def _background(photo: Image.Image, rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A 3:4 crop of a real photo as the surface, partly defocused (the product is in focus)."""
    pw, ph = photo.size
    cw = rng.uniform(0.35, 0.95) * min(pw, ph * w / h)
    ch = cw * h / w
    x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
    bg = photo.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        bg = bg.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return bg.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 2.5))).convert("RGBA")


def _context_view(product: Product, photo: Image.Image, rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """The region re-photographed in its own scene: zoomed out, off-centre, oblique."""
    x0, y0, s = product.box
    zoom = rng.uniform(1.3, 2.0)
    cx = x0 + s / 2 + rng.uniform(-0.12, 0.12) * s
    cy = y0 + s / 2 + rng.uniform(-0.12, 0.12) * s
    half_w, half_h = zoom * s / 2, zoom * s / 2 * h / w
    src = np.array([[cx - half_w, cy - half_h], [cx + half_w, cy - half_h], [cx + half_w, cy + half_h],
                    [cx - half_w, cy + half_h]])
    src = src + rng.uniform(-0.18, 0.18, size=(4, 2)) * s  # oblique camera
    angle = math.radians(rng.normal(0, 14))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = (src - [cx, cy]) @ rot.T + [cx, cy]
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    view = photo.transform((w, h), Image.Transform.PERSPECTIVE, perspective_coefficients(dst, src),
                           Image.Resampling.BICUBIC, fillcolor=(90, 90, 90))
    return view.convert("RGBA")


def _photo_occluder(photo: Image.Image, rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A piece of another real photo (a hand, a bag, a shelf edge) over one corner of the frame."""
    pw, ph = photo.size
    ow, oh = int(rng.uniform(0.25, 0.45) * w), int(rng.uniform(0.2, 0.35) * h)
    x0, y0 = rng.uniform(0, pw - pw / 3), rng.uniform(0, ph - ph / 3)
    patch = photo.resize((ow, oh), Image.Resampling.BILINEAR, box=(x0, y0, x0 + pw / 3, y0 + ph / 3))
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    corner = int(rng.integers(4))
    layer.paste(patch.convert("RGBA"), ((0 if corner % 2 == 0 else w - ow), (0 if corner < 2 else h - oh)))
    return layer


def phone_view(product: Product, clutter: list[Product], photos: list[Image.Image], rng: np.random.Generator,
               size: int) -> tuple[Image.Image, int]:
    """A consumer's phone photo of ``product`` (3:4 portrait, ``size`` px wide) and its JPEG quality."""
    w, h = size, int(round(size * 4 / 3))
    others = [i for i in range(len(photos)) if i != product.photo_index] or list(range(len(photos)))
    centre, prod_size = (w / 2, h / 2), 0.8 * w
    if product.kind == "region" and rng.random() < 0.5:
        canvas = _context_view(product, photos[product.photo_index], rng, w, h)
    else:
        canvas = _background(photos[others[int(rng.integers(len(others)))]], rng, w, h)
        for frag in clutter:  # other products lying around, cut by the frame
            fs = rng.uniform(0.45, 0.9) * w
            edge = int(rng.integers(4))
            cx = [rng.uniform(-0.1, 0.2), rng.uniform(0.8, 1.1)][edge % 2] * w if edge < 2 else rng.uniform(0, w)
            cy = rng.uniform(0, h) if edge < 2 else [rng.uniform(-0.05, 0.15), rng.uniform(0.85, 1.05)][edge % 2] * h
            canvas = Image.alpha_composite(canvas, place(frag.sprite, (w, h), (cx, cy), fs,
                                                         rng.uniform(-60, 60), 0.08, rng))
        prod_size = rng.uniform(0.45, 0.85) * w
        centre = (w / 2 + rng.uniform(-0.14, 0.14) * w, h / 2 + rng.uniform(-0.12, 0.12) * w)
        angle = rng.normal(0, 14) if rng.random() < 0.8 else rng.uniform(-40, 40)
        layer = place(product.sprite, (w, h), centre, prod_size, angle, rng.uniform(0.05, 0.16), rng)
        shadow = layer.getchannel("A").point(lambda v: v * 100 // 255).filter(ImageFilter.GaussianBlur(0.02 * w))
        dark = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        dark.putalpha(Image.new("L", (w, h), 0))
        dark.paste((0, 0, 0, 255), (int(0.015 * w), int(0.025 * w)), shadow)
        canvas = Image.alpha_composite(Image.alpha_composite(canvas, dark), layer)
    if rng.random() < 0.5:
        canvas = Image.alpha_composite(canvas, _occluder(rng, (w, h), centre, prod_size))
    elif rng.random() < 0.66:
        canvas = Image.alpha_composite(canvas, _photo_occluder(photos[others[int(rng.integers(len(others)))]],
                                                               rng, w, h))
    img = np.asarray(canvas.convert("RGB"), np.float32) / 255.0
    img = _lighting(img, rng)
    out = _blur(Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "RGB"), rng)
    if rng.random() < 0.4:  # missed focus on top of shake: small phone lenses in a dim room
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.0)))
    arr = np.asarray(out, np.float32)
    sigma = rng.uniform(2.0, 9.0)
    arr = arr + rng.standard_normal(arr.shape[:2] + (1,), dtype=np.float32) * np.float32(sigma)
    arr = arr + rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(sigma * 0.5)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB"), int(rng.integers(25, 76))


def generate_transfer_dataset(out_dir: str | os.PathLike, n_products: int = 300, seed: int = 0,
                              sources: SourceSet | None = None, image_size: int = 288,
                              train_manifest: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Write the transfer benchmark to ``out_dir`` (``images/<product>/{shop_0,user_0,user_1}.jpg``,
    ``manifest.csv`` with every row ``split=test``, ``transfer.json``) and return the manifest path.

    At most ``n_products`` products (fewer if the sources hold fewer; ``transfer.json`` says how
    many). With ``train_manifest`` the new set is checked to share no product with it.
    """
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 px, got {image_size}")
    if n_products < 2:
        raise ValueError(f"n_products must be at least 2, got {n_products}")
    sources = sources or SourceSet.resolve()
    out = Path(out_dir)
    images = out / IMAGES_DIR
    if images.exists() and not (images / _MARKER).exists():
        raise FileExistsError(f"{images} exists and was not written by the transfer generator; "
                              f"choose another --out folder")
    candidates, photos, records = _collect(sources, seed)
    chosen = candidates[:n_products]
    if len(chosen) < 2:
        raise TransferSourceError(f"the transfer sources give {len(chosen)} usable product(s); need at least 2 "
                                  f"(sources: {', '.join(sorted(sources.files))})")

    if train_manifest is not None:  # before any image is rendered
        _refuse_shared({p.product_id for p in chosen}, out / MANIFEST_NAME, train_manifest)

    manifest = out / MANIFEST_NAME
    staging = staging_path(images)
    rows: list[DatasetRow] = []
    with staged_images(images, manifest, _MARKER, "deepproduct.training.data.transfer", progress=progress,
                       total=len(chosen), unit="product", desc="transfer") as advance:
        plan = np.random.default_rng([seed, 7])
        for index, product in enumerate(chosen):
            picks = [int(i) for i in plan.choice(len(chosen), size=min(3, len(chosen)), replace=False) if i != index]
            clutter = [chosen[i] for i in picks[: int(plan.integers(1, 4))]]
            rng = np.random.default_rng([seed, 8, index])
            folder = staging / product.product_id
            folder.mkdir()
            attrs = {"source": product.source, "kind": product.kind}

            shots = [("shop_0.jpg", "shop",
                      encode_jpeg(shop_photo(product.sprite, rng, image_size, take=0), SHOP_JPEG_QUALITY))]
            for k in range(N_QUERIES):
                img, quality = phone_view(product, clutter, photos, rng, image_size)
                shots.append((f"user_{k}.jpg", "user", encode_jpeg(img, quality)))
            for name, domain, data in shots:
                (folder / name).write_bytes(data)
                rows.append(DatasetRow(path=f"{IMAGES_DIR}/{product.product_id}/{name}",
                                       product_id=product.product_id, domain=domain, split="test",
                                       attributes=attrs, tags=()))
            advance(1)
    per_source: dict[str, int] = {}
    for p in chosen:
        per_source[p.source] = per_source.get(p.source, 0) + 1
    params = {"generator_version": GENERATOR_VERSION, "seed": seed, "n_products_requested": n_products,
              "products": len(chosen), "candidates": len(candidates), "images": len(rows),
              "image_size": image_size, "products_per_source": per_source,
              "licences": {n: SOURCES[n].licence for n in per_source if n in SOURCES}, "files": records}
    write_text_atomic(out / PARAMS_NAME, json.dumps(params, indent=2) + "\n")
    return write_dataset_manifest(rows, manifest)


def check_disjoint(transfer_manifest: str | os.PathLike, train_manifest: str | os.PathLike) -> None:
    """Refuse a transfer set that shares product ids with a training manifest (it would measure
    memorisation, not transfer). The error names both files and the first shared ids."""
    _refuse_shared(set(read_dataset_manifest(transfer_manifest).products()), transfer_manifest, train_manifest)


def _refuse_shared(transfer: set[str], transfer_manifest: str | os.PathLike,
                   train_manifest: str | os.PathLike) -> None:
    train = set(read_dataset_manifest(train_manifest).products("train"))
    shared = sorted(transfer & train)
    if shared:
        shown = ", ".join(shared[:5])
        raise ValueError(f"{transfer_manifest}: transfer manifest shares {len(shared)} product id(s) with the "
                         f"training split of {train_manifest} ({shown}{' ...' if len(shared) > 5 else ''}); "
                         f"a transfer set must be disjoint from training")
