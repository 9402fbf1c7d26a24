"""Where the transfer benchmark's real images come from: a registry of image sources that installed
packages ship, and the turning of their files into *products*.

Why these sources: the benchmark must be real imagery (photographs, photographed objects), from
several origins so that it is not one camera or one style, and installable by name from a package
registry so that every machine can rebuild the same set (no downloads at run time). Licences and
package names are listed in ``docs/transfer-benchmark.md``.

Two kinds of source file:

* ``cutout`` -- an RGBA photograph of one object with a transparent background (Tux Paint's photo
  stamps). The object is the product; it can be pasted onto any real background.
* ``photo`` -- an ordinary photograph. Its products are distinct square *regions* of it (a fig in a
  bowl, a rocket's nose, a cat's face): real surfaces and objects, which a phone photo re-frames with
  its surroundings or shows as a print lying on another scene. Photos are also the backgrounds.

Everything here is deterministic for a seed, reads files in sorted order, and raises
:class:`TransferSourceError` (a ``ValueError``) naming the file or folder when a source cannot be used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
PHOTO_MAX_SIDE = 1024  # big wallpapers are shrunk on load: regions and backgrounds need no more
# Products are kept at 512 px (the synthetic benchmark's sprites are 256): a phone photo of the
# default 512 px width shows a product at up to ~440 px, so a 224 px model input still sees real
# detail that a 160 px one does not (a 256 px sprite made the set blind to the input size).
TRANSFER_SPRITE = 512
MIN_CUTOUT_SIDE = 64  # smaller stamps are icons, not photographs
MIN_PHOTO_SIDE = 256
MIN_REGION_DETAIL = 6.0  # mean |horizontal| + |vertical| grey step (0-255 scale) inside a region


class TransferSourceError(ValueError):
    """A source folder or image that cannot be used; the message names it."""


@dataclass(frozen=True)
class ImageSource:
    """One registered source: where its files are, what they are, under which licence.

    ``root`` finds the folder the source's files live in on this machine (None: not installed) and
    ``select`` lists the files of that folder the source uses. They are separate so that the lock
    file (``transfer_lock``) can name every file relative to its root -- the same on every machine
    -- and a test can point a source at a copy of its files.
    """

    name: str
    kind: str  # "cutout" or "photo"
    package: str  # how a machine gets it (pip or apt package)
    licence: str
    root: Callable[[], Path | None] = field(compare=False)
    select: Callable[[Path], list[Path]] = field(compare=False)

    def find(self) -> list[Path]:
        """The source's files on this machine, sorted ([] when it is not installed)."""
        root = self.root()
        return self.select(root) if root is not None and root.is_dir() else []


def _pkg_dir(module: str) -> Path | None:
    try:
        mod = __import__(module, fromlist=["__file__"])
    except ImportError:
        return None
    return Path(mod.__file__).parent


def _named(names: tuple[str, ...]) -> Callable[[Path], list[Path]]:
    def select(folder: Path) -> list[Path]:
        return [folder / n for n in names if (folder / n).is_file()]
    return select


# Only the files shipped inside scikit-image's wheel (no pooch downloads): its colour and grey
# photographs. Synthetic test patterns (chessboard, phantom, logo, binary blobs) are left out.
_SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                   "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "camera.png", "coins.png", "moon.png",
                   "page.png", "brick.png", "grass.png", "gravel.png")
# Ubuntu's community photo wallpapers (Debian package lomiri-wallpapers-16.04); two abstract
# renders of that set are not photographs and are left out.
_WALLPAPER_DIR = Path("/usr/share/backgrounds")
_WALLPAPER_NOT_PHOTOS = ("Fossa_by_Jasper_Roks.jpg", "Painting-Colors_by__herobrine7gamer.jpg")
_TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
_TUXPAINT_SKIP = ("symbols", "cartoon", "town/flags", "seasonal/halloween")  # drawings, letters, signs


def _skimage_root() -> Path | None:
    d = _pkg_dir("skimage")
    return d / "data" if d else None


def _sklearn_root() -> Path | None:
    d = _pkg_dir("sklearn")
    return d / "datasets" / "images" if d else None


def _matplotlib_root() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    return Path(matplotlib.get_data_path()) / "sample_data"


def _wallpapers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*_by_*.jpg") if p.name not in _WALLPAPER_NOT_PHOTOS)


def _tuxpaint(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*.png")):
        rel = p.relative_to(folder).as_posix()
        if not rel.startswith(_TUXPAINT_SKIP) and "_thumb" not in p.name:
            out.append(p)
    return out


SOURCES: dict[str, ImageSource] = {s.name: s for s in (
    ImageSource("skimage", "photo", "pip: scikit-image", "CC0 / public domain (per file: skimage.data docstrings)",
                _skimage_root, _named(_SKIMAGE_PHOTOS)),
    ImageSource("sklearn", "photo", "pip: scikit-learn", "CC-BY 2.0 (Flickr photos)", _sklearn_root,
                _named(("china.jpg", "flower.jpg"))),
    ImageSource("matplotlib", "photo", "pip: matplotlib", "public domain (US Navy photo)", _matplotlib_root,
                _named(("grace_hopper.jpg",))),
    ImageSource("wallpapers", "photo", "apt: lomiri-wallpapers-16.04",
                "CC-BY-4.0 / CC-BY-SA-4.0 (per file: Debian copyright)", lambda: _WALLPAPER_DIR, _wallpapers),
    ImageSource("tuxpaint", "cutout", "apt: tuxpaint-stamps-default", "GPL-2+ (Debian copyright)",
                lambda: _TUXPAINT_DIR, _tuxpaint),
)}


def available_sources() -> dict[str, list[Path]]:
    """The registered sources that are installed on this machine, with their files."""
    return {name: files for name, s in SOURCES.items() if (files := s.find())}


def folder_files(folder: Path) -> list[Path]:
    """Image files of a user-given source folder (recursively, sorted); errors name the folder."""
    if not folder.is_dir():
        raise TransferSourceError(f"{folder}: source folder does not exist")
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:  # e.g. a folder we may not list
        raise TransferSourceError(f"{folder}: cannot read source folder ({exc})") from exc
    if not files:
        raise TransferSourceError(f"{folder}: source folder has no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def load_image(path: Path) -> Image.Image:
    """The file decoded (RGBA if it has transparency, else RGB); an unreadable file is an error."""
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            return im.convert("RGBA" if has_alpha else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise TransferSourceError(f"{path}: cannot read image ({exc})") from exc


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "img"


@dataclass
class Product:
    """One transfer product: a square RGBA sprite (TRANSFER_SPRITE px) plus, for photo regions, where it sits."""

    product_id: str
    source: str
    kind: str  # "cutout" or "region"
    file: Path
    sprite: Image.Image
    photo_index: int = -1  # index into the photo list (regions: their own photo, never a background)
    box: tuple[float, float, float] = (0.0, 0.0, 0.0)  # region: x0, y0, side in the shrunk photo


def is_photographic(rgba: Image.Image) -> bool:
    """A cut-out that looks photographed rather than drawn: many distinct colours on the object.

    Flat-shaded drawings use a few dozen colours; photographs of objects have thousands. Measured on
    Tux Paint's stamps (threshold between the two clusters); the rule is deliberately simple.
    """
    a = np.asarray(rgba, np.uint8)
    opaque = a[..., 3] > 200
    n = int(opaque.sum())
    if n < 2000:
        return False
    q = (a[opaque][:, :3] >> 3).astype(np.int32)
    distinct = len(np.unique(q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2]))
    return distinct >= 600


def cutout_product(path: Path, image: Image.Image, source: str, product_id: str) -> Product | None:
    """The object's sprite (cropped to its alpha box, centred on a transparent square), or None if the
    file is no usable photo cut-out (too small, no transparency, drawn rather than photographed)."""
    if image.mode != "RGBA":
        return None
    alpha = np.asarray(image.getchannel("A"))
    if (alpha < 16).mean() < 0.05:  # no real transparency: not a cut-out
        return None
    bbox = image.getchannel("A").point(lambda v: 255 if v > 16 else 0).getbbox()
    if bbox is None:
        return None
    obj = image.crop(bbox)
    if max(obj.size) < MIN_CUTOUT_SIDE or min(obj.size) < MIN_CUTOUT_SIDE // 4 or not is_photographic(obj):
        return None
    side = int(max(obj.size) * 1.08)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(obj, ((side - obj.width) // 2, (side - obj.height) // 2))
    return Product(product_id, source, "cutout", path,
                   square.resize((TRANSFER_SPRITE, TRANSFER_SPRITE), Image.Resampling.LANCZOS))


def shrink_photo(image: Image.Image) -> Image.Image | None:
    """RGB, longest side at most PHOTO_MAX_SIDE; None when too small to hold regions."""
    rgb = image.convert("RGB")
    if min(rgb.size) < MIN_PHOTO_SIDE:
        return None
    scale = PHOTO_MAX_SIDE / max(rgb.size)
    if scale < 1:
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
    return rgb


def photo_regions(photo: Image.Image, rng: np.random.Generator, max_regions: int = 10,
                  tries: int = 200) -> list[tuple[float, float, float]]:
    """Distinct square regions (x0, y0, side) of a photo: 28-50 % of its short side, overlapping any
    earlier region by at most 15 % of their area, and textured with in-focus detail (a plain sky
    or a defocused background is no product)."""
    w, h = photo.size
    grey = np.asarray(photo.convert("L"), np.float32)
    boxes: list[tuple[float, float, float]] = []
    for _ in range(tries):
        if len(boxes) >= max_regions:
            break
        s = rng.uniform(0.28, 0.5) * min(w, h)
        x0, y0 = rng.uniform(0, w - s), rng.uniform(0, h - s)
        if any(_overlap((x0, y0, s), b) > 0.15 for b in boxes):
            continue
        patch = grey[int(y0):int(y0 + s), int(x0):int(x0 + s)]
        detail = np.abs(np.diff(patch, axis=1)).mean() + np.abs(np.diff(patch, axis=0)).mean()
        if patch.std() < 20 or detail < MIN_REGION_DETAIL:  # plain sky, bokeh: nothing to recognise
            continue
        boxes.append((float(x0), float(y0), float(s)))
    return boxes


def _overlap(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1]))
    return ix * iy / min(a[2] ** 2, b[2] ** 2)


def region_sprite(photo: Image.Image, box: tuple[float, float, float]) -> Image.Image:
    x0, y0, s = box
    crop = photo.resize((TRANSFER_SPRITE, TRANSFER_SPRITE), Image.Resampling.LANCZOS, box=(x0, y0, x0 + s, y0 + s))
    return crop.convert("RGBA")


def unique_id(base: str, taken: set[str]) -> str:
    pid, k = base, 2
    while pid in taken:
        pid, k = f"{base}-{k}", k + 1
    taken.add(pid)
    return pid


def slug(text: str) -> str:
    return _slug(text)
