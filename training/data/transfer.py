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

Second style (``style="print-screen"``): the same products and shop images, but each query is the
catalogue photo seen again -- printed (halftone, paper, a bent page) or on a screen (pixel grid
and moire, glare, a bezel), photographed at an angle with the same phone pipeline: packaging,
posters, a product on another shop's page.

Identical on every machine with the same packages: the registered sources' files are pinned by
``transfer_sources.lock.json`` (``transfer_lock``); a missing or different file is refused with a
message naming it and what it does to the set. ``transfer.json`` records the lock, every file's
sha256 and ``manifest_sha256`` (:func:`manifest_digest`: the manifest CSV's bytes and every
image's bytes in path order), which two machines compare.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

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
from deepproduct.training.data.transfer_lock import (
    LOCK_PATH,
    LockProblem,
    SourceFile,
    TransferLockError,
    describe_problems,
    dump_lock,
    installed_files,
    lock_document,
    locked_files,
    read_lock,
    source_files,
)
from deepproduct.training.data.transfer_sources import (
    SOURCES,
    Product,
    TransferSourceError,
    cutout_product,
    folder_files,
    load_image,
    photo_regions,
    region_sprite,
    shrink_photo,
    slug,
    unique_id,
)

# Bump when the same seed and sources would give different images. 2: 512 px sprites and images
# (the set was blind to the input size at 288 px), regions keyed by file, products ordered by id
# hash (a missing file changes only its own products), the print-screen style.
GENERATOR_VERSION = 2
STYLES = ("phone", "print-screen")
MANIFEST_NAME = "manifest.csv"
IMAGES_DIR = "images"
PARAMS_NAME = "transfer.json"
PRODUCT_PREFIX = "tr-"
_MARKER = ".deepproduct-transfer"
SHOP_JPEG_QUALITY = 92
N_QUERIES = 2


@dataclass(frozen=True)
class SourceSet:
    """The files to build from, per source name: registered package sources (the locked files, or
    with ``lock_path=None`` whatever is installed) and/or user folders.

    ``missing`` lists the locked files left out under ``allow_missing`` (recorded in
    ``transfer.json``); ``lock`` is the lock file used and its sha256.
    """

    files: dict[str, list[SourceFile]]
    lock: dict | None = None
    missing: tuple[LockProblem, ...] = ()

    @classmethod
    def resolve(cls, names: Sequence[str] | None = None, folders: Sequence[Path] = (), *,
                lock_path: str | os.PathLike | None = LOCK_PATH, n_products: int = 300,
                allow_missing: bool = False) -> SourceSet:
        """``names`` of registered sources (None = every locked one, or without a lock every
        installed one) plus extra folders (each its own source, named ``dir-<folder name>``, not
        locked: their sha256s go to ``transfer.json``).

        With a lock, a locked file that is missing or differs is a :class:`TransferLockError` naming
        it and what it does to a ``n_products`` set, unless ``allow_missing``.
        """
        files: dict[str, list[SourceFile]] = {}
        lock_info, missing = None, ()
        if names is None or names:
            lock = read_lock(lock_path) if lock_path is not None else None
            if names is None:
                names = sorted(lock["sources"]) if lock is not None else [n for n in SOURCES if SOURCES[n].find()]
            for n in names:
                if n not in SOURCES:
                    raise TransferSourceError(f"unknown source {n!r}; registered: {', '.join(SOURCES)}")
                if lock is not None and n not in lock["sources"]:
                    raise TransferLockError(f"{lock_path}: source {n!r} is not in the transfer source lock; "
                                            f"rewrite it with `dp-data transfer-lock`")
            if lock is not None:
                if lock.get("generator_version") != GENERATOR_VERSION:
                    raise TransferLockError(f"{lock_path}: written for transfer generator version "
                                            f"{lock.get('generator_version')}, this is version {GENERATOR_VERSION}; "
                                            f"rewrite it with `dp-data transfer-lock`")
                got, problems = locked_files(lock, list(names))
                if problems and not allow_missing:
                    raise TransferLockError(describe_problems(problems, lock, list(names), n_products, lock_path)
                                            + "; refusing to build a different set (--allow-missing-sources "
                                              "builds it and records that in transfer.json)")
                files = {n: f for n, f in got.items() if f}
                missing = tuple(problems)
                lock_info = {"path": Path(lock_path).name, "sha256": sha256_file(lock_path),
                             "sources": list(names)}
            else:
                for n in names:
                    if not (found := installed_files(n)):
                        raise TransferSourceError(f"source {n!r} is not installed ({SOURCES[n].package})")
                    files[n] = found
        for folder in folders:
            folder = Path(folder)
            files[f"dir-{slug(folder.name)}"] = source_files(folder.name, folder, folder_files(folder))
        if not files:
            raise TransferSourceError("no transfer sources installed and no --source folder given "
                                      "(see docs/transfer-benchmark.md for the packages)")
        return cls(files, lock_info, missing)


def _file_seed(source: str, rel: str) -> int:
    """A generator seed from a file's identity (not its position): a file's regions are the same
    whichever other files are present, so a missing file changes only its own products."""
    return int.from_bytes(hashlib.sha256(f"{source}/{rel}".encode()).digest()[:8], "little")


def _order_key(seed: int, product_id: str) -> bytes:
    return hashlib.sha256(f"{seed}/{product_id}".encode()).digest()


def _collect(sources: SourceSet, seed: int) -> tuple[list[Product], list[Image.Image], list[dict]]:
    """All candidate products (per source, in a seed-dependent order by product-id hash), the
    photos (backgrounds and region parents) and the file records for ``transfer.json`` (each with
    the candidate products it gave: what the lock records)."""
    per_source: dict[str, list[Product]] = {}
    photos: list[Image.Image] = []
    records = []
    taken: set[str] = set()
    for name, files in sorted(sources.files.items()):
        products: list[Product] = []
        for sf in files:
            image = load_image(sf.path)
            record = {"source": name, "file": sf.rel, "sha256": sf.sha256, "products": 0}
            records.append(record)
            stem = slug(Path(sf.rel).stem)
            if image.mode == "RGBA":
                p = cutout_product(sf.path, image, name, "")
                if p is not None:
                    p.product_id = unique_id(f"{PRODUCT_PREFIX}{name}-{stem}", taken)
                    products.append(p)
                    record["products"] = 1
                continue
            photo = shrink_photo(image)
            if photo is None:
                continue
            record["photo"] = True
            photo_index = len(photos)
            photos.append(photo)
            boxes = photo_regions(photo, np.random.default_rng(_file_seed(name, sf.rel)))
            for k, box in enumerate(boxes):
                pid = unique_id(f"{PRODUCT_PREFIX}{name}-{stem}-r{k}", taken)
                products.append(Product(pid, name, "region", sf.path, region_sprite(photo, box), photo_index, box))
            record["products"] = len(boxes)
        per_source[name] = sorted(products, key=lambda p: _order_key(seed, p.product_id))
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
    return _camera(canvas, rng)


def _camera(canvas: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """What the phone adds to the scene: uneven light and colour cast, defocus or shake, sensor
    noise; and the JPEG quality it is sent with. Blur and noise are in pixels of the generated
    image (the sensor), so a smaller model input averages them away, as with real photos."""
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


# -- the print-screen style: the catalogue photo seen again on paper or on a screen ----------------

def _catalogue_page(product: Product, rng: np.random.Generator, side: int) -> np.ndarray:
    """What is printed or shown (float RGB, ``side`` px square): half the time the shop's own
    catalogue photo, half the time the product on another shop's page (another studio take,
    smaller, with a title, a price and text lines around it)."""
    if rng.random() < 0.5:
        return np.asarray(shop_photo(product.sprite, rng, side, take=0), np.float32) / 255.0
    page = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(236, 256, 3)))
    shot = shop_photo(product.sprite, rng, int(side * rng.uniform(0.6, 0.75)), take=1)
    x0 = int(rng.uniform(0.03, 0.97 * side - shot.width))
    y0 = int(side * rng.uniform(0.12, 0.2))
    page.paste(shot, (x0, y0))
    draw = ImageDraw.Draw(page)
    grey = tuple(int(v) for v in rng.integers(40, 110, 3))
    draw.rectangle((int(0.04 * side), int(0.03 * side), int(rng.uniform(0.5, 0.9) * side), int(0.08 * side)),
                   fill=grey)  # the title bar
    text_x = x0 + shot.width + int(0.03 * side) if x0 < 0.2 * side else int(0.04 * side)
    for k in range(int(rng.integers(3, 7))):  # text lines, a price in colour
        y = y0 + shot.height + int((0.03 + 0.045 * k) * side)
        if y > 0.97 * side:
            break
        colour = (200, 30, 30) if k == 0 else (150, 150, 150)
        draw.rectangle((text_x, y, text_x + int(rng.uniform(0.2, 0.6) * side), y + int(0.018 * side)), fill=colour)
    return np.asarray(page, np.float32) / 255.0


def _screen_texture(content: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The content on an LCD: each content pixel becomes a 3x3 block of red, green and blue stripes
    with a dark gap, brightness and contrast of an emissive screen. Sampled later without a
    prefilter, the stripes alias into moire, as a phone camera does."""
    tex = np.repeat(np.repeat(content, 3, axis=0), 3, axis=1)
    stripe = np.zeros((3, 3, 3), np.float32)
    for c in range(3):
        stripe[:, c, c] = 1.0
    stripe = stripe * 0.75 + 0.25  # subpixels leak into their neighbours
    stripe[2, :, :] *= rng.uniform(0.45, 0.75)  # the black matrix between pixel rows
    reps = (tex.shape[0] // 3, tex.shape[1] // 3, 1)
    return np.clip(tex * np.tile(stripe, reps) * rng.uniform(1.1, 1.45), 0, 1.2)


def _print_texture(content: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The content printed: CMY halftone dots on rotated screens (2x the content resolution, a dot
    every ~4 px), slightly muted ink on off-white paper with a fibre texture."""
    h, w = content.shape[0] * 2, content.shape[1] * 2
    up = np.asarray(Image.fromarray((content * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR),
                    np.float32) / 255.0
    ink = 1.0 - up  # C, M, Y coverage
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(3.2, 4.8)
    out = np.empty_like(up)
    for c, angle in enumerate((15.0, 75.0, 0.0)):
        a = math.radians(angle + rng.uniform(-3, 3))
        u, v = x * math.cos(a) + y * math.sin(a), -x * math.sin(a) + y * math.cos(a)
        dots = 0.5 + 0.25 * (np.cos(2 * math.pi * u / period) + np.cos(2 * math.pi * v / period))
        out[..., c] = 1.0 - (ink[..., c] * 0.92 > dots) * rng.uniform(0.8, 0.95)
    paper = np.array(rng.uniform(0.9, 1.0, 3), np.float32) * (1 - 0.04 * rng.random((h, w, 1), np.float32))
    return out * paper


def _sample(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear lookup of ``tex`` at float coordinates (no prefilter: fine patterns alias, the
    moire a camera sees) and the mask of coordinates inside it."""
    h, w = tex.shape[:2]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x, y = np.clip(x, 0, w - 1.001), np.clip(y, 0, h - 1.001)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = tex[y0, x0] * (1 - fx) + tex[y0, x0 + 1] * fx
    bottom = tex[y0 + 1, x0] * (1 - fx) + tex[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy, inside


def print_screen_view(product: Product, photos: list[Image.Image], rng: np.random.Generator,
                      size: int) -> tuple[Image.Image, int]:
    """The catalogue photo seen again (3:4 portrait, ``size`` px wide): printed on a page that bends,
    or on a screen with a bezel, moire and a reflection; lying on or held in front of a real scene,
    photographed at an angle with glare; then the phone pipeline (:func:`_camera`)."""
    w, h = size, int(round(size * 4 / 3))
    others = [i for i in range(len(photos)) if i != product.photo_index] or list(range(len(photos)))
    canvas = np.asarray(_background(photos[others[int(rng.integers(len(others)))]], rng, w, h).convert("RGB"),
                        np.float32) / 255.0
    screen = rng.random() < 0.5
    content = _catalogue_page(product, rng, int(size * rng.uniform(0.55, 0.8)))
    tex = _screen_texture(content, rng) if screen else _print_texture(content, rng)
    th, tw = tex.shape[:2]
    if screen:  # the bezel: a dark frame around the panel
        pad = int(0.06 * tw)
        framed = np.full((th + 2 * pad, tw + 2 * pad, 3), rng.uniform(0.02, 0.12), np.float32)
        framed[pad:pad + th, pad:pad + tw] = tex
        tex, th, tw = framed, th + 2 * pad, tw + 2 * pad
    # Where the medium's corners land in the photo: scaled, off-centre, rotated, oblique.
    side = rng.uniform(0.6, 0.95) * w
    cx, cy = w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.08, 0.08) * h
    half = side / 2
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    corners = corners + rng.uniform(-0.14, 0.14, size=(4, 2)) * side
    a = math.radians(rng.normal(0, 8))
    corners = corners @ np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]).T + [cx, cy]
    coeffs = perspective_coefficients(corners, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float))
    ya, xa = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    ca, cb, cc, cd, ce, cf, cg, ch = coeffs
    den = cg * xa + ch * ya + 1
    u, v = (ca * xa + cb * ya + cc) / den, (cd * xa + ce * ya + cf) / den  # 0..1 across the medium
    bend = rng.uniform(0.02, 0.08) * rng.choice([-1, 1])  # a curved page or screen, a barrel-ish lens
    v = v + bend * 4 * (u - 0.5) ** 2 - bend / 3
    u = u + rng.uniform(-0.03, 0.03) * (2 * v - 1) ** 2
    colour, inside = _sample(tex, (u * (tw - 1)).astype(np.float32), (v * (th - 1)).astype(np.float32))
    if screen:  # a reflection of the room in the glass
        refl = np.asarray(_background(photos[others[int(rng.integers(len(others)))]], rng, w, h).convert("RGB"),
                          np.float32) / 255.0
        colour = colour + rng.uniform(0.05, 0.2) * refl
    # Glare: a soft specular highlight across the medium.
    gx, gy = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
    ga = math.radians(rng.uniform(0, 180))
    du, dv = u - gx, v - gy
    along, across = du * math.cos(ga) + dv * math.sin(ga), -du * math.sin(ga) + dv * math.cos(ga)
    glare = rng.uniform(0.3, 0.9) * np.exp(-(along / rng.uniform(0.2, 0.5)) ** 2 - (across / rng.uniform(0.05, 0.15)) ** 2)
    colour = colour + glare[..., None].astype(np.float32)
    shadow = np.asarray(Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.02 * w)),
                        np.float32)[..., None] / 255.0
    canvas = canvas * (1 - 0.35 * shadow)
    canvas = np.where(inside[..., None], np.clip(colour, 0, 1), canvas)
    image = Image.fromarray((canvas * 255).round().astype(np.uint8), "RGB").convert("RGBA")
    if rng.random() < 0.3:  # a thumb holding the print or the phone
        image = Image.alpha_composite(image, _occluder(rng, (w, h), (cx, cy), side))
    return _camera(image, rng)


def generate_transfer_dataset(out_dir: str | os.PathLike, n_products: int = 300, seed: int = 0,
                              sources: SourceSet | None = None, image_size: int = 512,
                              train_manifest: str | os.PathLike | None = None, progress: bool = False,
                              style: str = "phone") -> Path:
    """Write the transfer benchmark to ``out_dir`` (``images/<product>/{shop_0,user_0,user_1}.jpg``,
    ``manifest.csv`` with every row ``split=test``, ``transfer.json``) and return the manifest path.

    At most ``n_products`` products (fewer if the sources hold fewer; ``transfer.json`` says how
    many). With ``train_manifest`` the new set is checked to share no product with it. ``style``:
    ``phone`` (the product photographed where it lies) or ``print-screen`` (the catalogue photo
    photographed from a print or a screen); the products and shop images are the same for both.
    """
    problems = [message for ok, message in (
        (image_size >= 64, f"image_size must be at least 64 px, got {image_size}"),
        (n_products >= 2, f"n_products must be at least 2, got {n_products}"),
        (style in STYLES, f"unknown transfer style {style!r}; choose one of {', '.join(STYLES)}"),
    ) if not ok]
    if problems:  # every problem at once: a caller fixes its arguments in one go
        raise ValueError("; ".join(problems))
    sources = sources or SourceSet.resolve(n_products=n_products)
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
    (out / PARAMS_NAME).unlink(missing_ok=True)  # never an old transfer.json beside a new manifest
    staging = staging_path(images)
    rows: list[DatasetRow] = []
    with staged_images(images, manifest, _MARKER, "deepproduct.training.data.transfer", progress=progress,
                       total=len(chosen), unit="product", desc=f"transfer ({style})") as advance:
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
            # The print-screen queries draw from their own stream: the shop image is the same in both styles.
            qrng = rng if style == "phone" else np.random.default_rng([seed, 9, index])
            for k in range(N_QUERIES):
                if style == "phone":
                    img, quality = phone_view(product, clutter, photos, qrng, image_size)
                else:
                    img, quality = print_screen_view(product, photos, qrng, image_size)
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
    path = write_dataset_manifest(rows, manifest)
    params = {"generator_version": GENERATOR_VERSION, "style": style, "seed": seed,
              "n_products_requested": n_products, "products": len(chosen), "candidates": len(candidates),
              "images": len(rows), "image_size": image_size, "products_per_source": per_source,
              "manifest_sha256": manifest_digest(path), "lock": sources.lock,
              "missing_locked_files": [m.record() for m in sources.missing],
              "licences": {n: SOURCES[n].licence for n in per_source if n in SOURCES}, "files": records}
    write_text_atomic(out / PARAMS_NAME, json.dumps(params, indent=2) + "\n")
    return path


def manifest_digest(manifest_path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a transfer set: the manifest CSV's bytes, then each listed image's path
    and bytes in sorted path order. Two machines that print the same digest built the same set."""
    manifest_path = Path(manifest_path)
    h = hashlib.sha256(manifest_path.read_bytes())
    m = read_dataset_manifest(manifest_path)
    for row in sorted(m.rows, key=lambda r: r.path):
        h.update(b"\0" + row.path.encode() + b"\0")
        try:
            h.update(Path(m.abspath(row)).read_bytes())
        except OSError as exc:
            raise TransferSourceError(f"{m.abspath(row)}: cannot read image listed in {manifest_path} ({exc})") from exc
    return f"sha256:{h.hexdigest()}"


def write_source_lock(lock_path: str | os.PathLike = LOCK_PATH, names: Sequence[str] | None = None) -> dict:
    """Lock the registered sources installed here (``names``, default every installed one): each file
    by path under its source's root, sha256 and candidate products. Returns the document written."""
    names = list(names) if names is not None else [n for n in SOURCES if SOURCES[n].find()]
    unlocked = SourceSet.resolve(names, lock_path=None)
    _, _, records = _collect(unlocked, 0)
    products = {(r["source"], r["file"]): int(r["products"]) for r in records}
    photos = {(r["source"], r["file"]) for r in records if r.get("photo")}
    doc = lock_document(unlocked.files, products, photos, GENERATOR_VERSION)
    write_text_atomic(lock_path, dump_lock(doc))
    return doc


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
