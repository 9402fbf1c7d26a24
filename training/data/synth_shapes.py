"""Draw one synthetic product as an RGBA sprite: silhouette, surface pattern, trims, label, shading.

The sprite is the product seen front-on, as a studio shot would show it. The photo stage
(``synth_photo``) then places it on a studio background (shop images) or warps and degrades it on
a cluttered one (phone photos). Sizes here are in pixels of a ``SPRITE`` x ``SPRITE`` canvas; the
product fills about 80 % of it.

Why the choices below:

* Ten categories with clearly different outlines (t-shirt, tote bag, sneaker, bottle, box, can,
  mug, book, jar, cap), so that the coarse level of the task is shape, which any network solves.
* The identity lives in details that survive a phone photo at 224 px: pattern periods of at least
  18 sprite pixels, brand text set as large as the label allows, logo shapes ~40 px across, and a
  secondary colour on large trims (sole, cap, spine, handle, collar).
* Shading (cylinders for cans and bottles, faces for boxes, folds for cloth) and a dark outline make
  the sprite look like an object rather than a flat icon, so that lighting changes in the phone
  photos act on something three-dimensional.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deepproduct.training.data.synth_catalog import PALETTE, ProductSpec

SPRITE = 256
SS = 2  # supersampling of the masks (anti-aliased edges)
PERIODS = {"small": 18.0, "medium": 27.0, "large": 40.0}
CREAM = (244, 238, 222)
SILVER = (196, 198, 204)
INK_DARK = (28, 28, 36)

Box = tuple[float, float, float, float]
Points = list[tuple[float, float]]
#: One shape of a mask: draws itself, in unit coordinates, with ImageDraw on the canvas's mask.
Shape = Callable[["_Canvas", ImageDraw.ImageDraw], None]


class _Canvas:
    """Masks drawn at SS x resolution in unit coordinates, returned as float arrays at 1x."""

    def __init__(self) -> None:
        self.n = SPRITE * SS

    def new(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("L", (self.n, self.n), 0)
        return img, ImageDraw.Draw(img)

    def pts(self, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * self.n, y * self.n) for x, y in pts]

    def box(self, b: Box) -> list[float]:
        return [b[0] * self.n, b[1] * self.n, b[2] * self.n, b[3] * self.n]

    @staticmethod
    def to_array(img: Image.Image) -> np.ndarray:
        return np.asarray(img.resize((SPRITE, SPRITE), Image.Resampling.BOX), dtype=np.float32) / 255.0

    def mask(self, *shapes: Shape) -> np.ndarray:
        """The coverage of ``shapes`` (see :func:`_rect` and the others below), drawn in order on one mask."""
        img, d = self.new()
        for shape in shapes:
            shape(self, d)
        return self.to_array(img)


class Geometry:
    """What a category contributes: the patterned body, solid trims, the label box and shading."""

    def __init__(self, body: np.ndarray, trims: list[tuple[np.ndarray, str]], label: Box, shade: np.ndarray):
        self.body, self.trims, self.label, self.shade = body, trims, label, shade


# -- silhouettes -------------------------------------------------------------------------------



@lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:SPRITE, 0:SPRITE].astype(np.float32)
    return (y + 0.5) / SPRITE, (x + 0.5) / SPRITE


def _cylinder(x0: float, x1: float) -> np.ndarray:
    """Lambert-like shading across a vertical cylinder spanning x0..x1, with a specular stripe."""
    _, x = _grid()
    t = np.clip((x - x0) / (x1 - x0) * 2 - 1, -1, 1)
    shade = 0.70 + 0.38 * np.sqrt(1 - t * t) + 0.28 * np.exp(-(((t + 0.45) / 0.10) ** 2))
    return shade.astype(np.float32)


def _cloth() -> np.ndarray:
    y, x = _grid()
    folds = 0.06 * np.sin(x * 19.0 + 1.3) * np.sin(y * 7.0) + 0.05 * np.sin(x * 7.0 - y * 5.0)
    return (1.06 - 0.14 * y + folds).astype(np.float32)


def _flat() -> np.ndarray:
    y, x = _grid()
    return (1.05 - 0.10 * y - 0.04 * x).astype(np.float32)


# Shapes in unit coordinates (fill 255 = covered, 0 = cut out); widths and radii are fractions of the canvas.

def _rect(box: Box, fill: int = 255) -> Shape:
    return lambda c, d: d.rectangle(c.box(box), fill)


def _ellipse(box: Box, fill: int = 255) -> Shape:
    return lambda c, d: d.ellipse(c.box(box), fill)


def _polygon(pts: Points) -> Shape:
    return lambda c, d: d.polygon(c.pts(pts), 255)


def _rounded(box: Box, radius: float) -> Shape:
    return lambda c, d: d.rounded_rectangle(c.box(box), radius=int(radius * c.n), fill=255)


def _pieslice(box: Box, start: float, end: float) -> Shape:
    return lambda c, d: d.pieslice(c.box(box), start, end, 255)


def _chord(box: Box, start: float, end: float) -> Shape:
    return lambda c, d: d.chord(c.box(box), start, end, 255)


def _arc(box: Box, start: float, end: float, width: float) -> Shape:
    return lambda c, d: d.arc(c.box(box), start, end, 255, width=int(width * c.n))


def _line(pts: Points, width: float) -> Shape:
    return lambda c, d: d.line(c.pts(pts), 255, width=int(width * c.n))


def _tshirt(c: _Canvas) -> Geometry:
    body = c.mask(_polygon([(0.38, 0.12), (0.22, 0.16), (0.04, 0.36), (0.16, 0.47), (0.25, 0.39), (0.25, 0.92),
                            (0.75, 0.92), (0.75, 0.39), (0.84, 0.47), (0.96, 0.36), (0.78, 0.16), (0.62, 0.12)]),
                  _ellipse((0.38, 0.04, 0.62, 0.21), 0))
    trim = c.mask(_arc((0.36, 0.02, 0.64, 0.23), 0, 180, 0.035), _line([(0.04, 0.36), (0.16, 0.47)], 0.04),
                  _line([(0.96, 0.36), (0.84, 0.47)], 0.04), _rect((0.25, 0.89, 0.75, 0.92)))
    return Geometry(body, [(trim * body, "colour2")], (0.31, 0.27, 0.69, 0.66), _cloth())


def _bag(c: _Canvas) -> Geometry:
    body = c.mask(_polygon([(0.18, 0.38), (0.82, 0.38), (0.89, 0.93), (0.11, 0.93)]))
    handle = c.mask(_arc((0.27, 0.10, 0.47, 0.66), 180, 360, 0.045), _arc((0.53, 0.10, 0.73, 0.66), 180, 360, 0.045),
                    _rect((0.18, 0.38, 0.82, 0.43)))
    return Geometry(body, [(handle, "colour2")], (0.24, 0.47, 0.76, 0.88), _cloth())


def _shoe(c: _Canvas) -> Geometry:
    body = c.mask(_polygon([(0.06, 0.74), (0.07, 0.50), (0.30, 0.44), (0.44, 0.27), (0.63, 0.25), (0.67, 0.42),
                            (0.84, 0.52), (0.95, 0.63), (0.95, 0.76)]))
    sole = c.mask(_rounded((0.04, 0.72, 0.97, 0.84), 0.05))
    laces = c.mask(*[_line([(0.47 + 0.03 * i, y), (0.62 + 0.01 * i, y + 0.03)], 0.018)
                     for i, y in ((i, 0.33 + 0.05 * i) for i in range(4))])
    y, x = _grid()
    shade = (1.04 - 0.12 * y).astype(np.float32)
    return Geometry(body, [(sole, "colour2"), (laces, "cream")], (0.14, 0.52, 0.62, 0.71), shade)


def _bottle(c: _Canvas) -> Geometry:
    body = c.mask(_rounded((0.29, 0.34, 0.71, 0.95), 0.06), _pieslice((0.29, 0.20, 0.71, 0.48), 180, 360),
                  _rect((0.42, 0.13, 0.58, 0.36)))
    cap = c.mask(_rounded((0.40, 0.04, 0.60, 0.15), 0.015))
    return Geometry(body, [(cap, "colour2")], (0.31, 0.45, 0.69, 0.84), _cylinder(0.29, 0.71))


def _box(c: _Canvas) -> Geometry:
    fa = c.mask(_rect((0.14, 0.28, 0.72, 0.92)))
    ta = c.mask(_polygon([(0.14, 0.28), (0.72, 0.28), (0.86, 0.14), (0.28, 0.14)]))
    sa = c.mask(_polygon([(0.72, 0.28), (0.86, 0.14), (0.86, 0.78), (0.72, 0.92)]))
    body = np.clip(fa + ta + sa, 0, 1)
    shade = (1.0 * fa + 1.18 * ta + 0.70 * sa) / np.maximum(body, 1e-3) * (1.04 - 0.08 * _grid()[0])
    band = c.mask(_rect((0.14, 0.84, 0.72, 0.92)), _polygon([(0.72, 0.84), (0.86, 0.70), (0.86, 0.78), (0.72, 0.92)]))
    return Geometry(body, [(band, "colour2")], (0.19, 0.34, 0.67, 0.80), shade.astype(np.float32))


def _can(c: _Canvas) -> Geometry:
    body = c.mask(_rect((0.28, 0.16, 0.72, 0.88)), _ellipse((0.28, 0.82, 0.72, 0.94)))
    lid = c.mask(_ellipse((0.28, 0.10, 0.72, 0.22)))
    rings = c.mask(_rect((0.28, 0.17, 0.72, 0.23)), _rect((0.28, 0.80, 0.72, 0.86)))
    return Geometry(body, [(rings, "colour2"), (lid, "silver")], (0.30, 0.30, 0.70, 0.74), _cylinder(0.28, 0.72))


def _mug(c: _Canvas) -> Geometry:
    body = c.mask(_rounded((0.16, 0.22, 0.68, 0.90), 0.05))
    handle = c.mask(_ellipse((0.56, 0.34, 0.90, 0.74)), _ellipse((0.63, 0.42, 0.83, 0.66), 0),
                    _rect((0.16, 0.22, 0.66, 0.90), 0))
    rim = c.mask(_ellipse((0.16, 0.17, 0.68, 0.27)))
    inner = c.mask(_ellipse((0.18, 0.185, 0.66, 0.255)))
    return Geometry(body, [(handle, "colour2"), (rim, "body"), (inner, "dark")], (0.21, 0.33, 0.63, 0.82),
                    _cylinder(0.16, 0.68))


def _book(c: _Canvas) -> Geometry:
    cover = c.mask(_rect((0.22, 0.08, 0.82, 0.93)))
    spine = c.mask(_rect((0.15, 0.08, 0.25, 0.93)))
    pages = c.mask(_polygon([(0.82, 0.09), (0.87, 0.12), (0.87, 0.94), (0.82, 0.93)]))
    return Geometry(cover, [(spine, "colour2"), (pages, "cream")], (0.28, 0.16, 0.78, 0.84), _flat())


def _jar(c: _Canvas) -> Geometry:
    body = c.mask(_rounded((0.18, 0.28, 0.82, 0.93), 0.10))
    lid = c.mask(_rounded((0.22, 0.12, 0.78, 0.31), 0.03))
    return Geometry(body, [(lid, "colour2")], (0.24, 0.40, 0.76, 0.84), _cylinder(0.18, 0.82))


def _cap(c: _Canvas) -> Geometry:
    crown = c.mask(_chord((0.14, 0.16, 0.86, 1.00), 180, 360), _rect((0.14, 0.57, 0.86, 0.63)))
    brim = c.mask(_chord((0.06, 0.50, 0.94, 0.86), 0, 180), _ellipse((0.46, 0.13, 0.54, 0.19)))
    y, x = _grid()
    shade = (1.10 - 0.25 * np.abs(x - 0.5) - 0.10 * y).astype(np.float32)
    return Geometry(crown, [(brim, "colour2")], (0.27, 0.26, 0.73, 0.57), shade)


SILHOUETTES = {"tshirt": _tshirt, "bag": _bag, "shoe": _shoe, "bottle": _bottle, "box": _box,
               "can": _can, "mug": _mug, "book": _book, "jar": _jar, "cap": _cap}


# -- surface patterns --------------------------------------------------------------------------

def _band(coord: np.ndarray, period: float, duty: float, phase: float) -> np.ndarray:
    """Anti-aliased stripe coverage along ``coord`` (pixels): 1 inside a stripe, 0 outside."""
    d = np.abs(((coord / period + phase) % 1.0) - 0.5) * period  # distance from the stripe centre
    return np.clip(duty * period / 2 - d + 0.5, 0.0, 1.0)


def pattern_coverage(spec: ProductSpec, rng: np.random.Generator) -> np.ndarray:
    """Where the secondary colour shows through the main colour (0..1 per pixel)."""
    if spec.pattern == "plain":
        return np.zeros((SPRITE, SPRITE), np.float32)
    period = PERIODS[spec.pattern_scale]
    y, x = _grid()
    y, x = y * SPRITE, x * SPRITE
    ph1, ph2 = rng.random(), rng.random()
    if spec.pattern == "stripes":
        a = math.radians(spec.pattern_angle)
        return _band(x * math.cos(a) + y * math.sin(a), period, 0.42, ph1).astype(np.float32)
    if spec.pattern == "checks":
        return (0.5 * (_band(x, period, 0.5, ph1) + _band(y, period, 0.5, ph2))).astype(np.float32)
    if spec.pattern == "dots":
        r = 0.27 * period
        gy = (y / period + ph2)
        row = np.floor(gy)
        gx = x / period + ph1 + 0.5 * (row % 2)  # hexagonal packing
        dx, dy = (gx % 1.0 - 0.5) * period, (gy % 1.0 - 0.5) * period
        return np.clip(r - np.sqrt(dx * dx + dy * dy) + 0.5, 0, 1).astype(np.float32)
    if spec.pattern == "print":
        return _print_motifs(spec.motif, period * 1.35, rng)
    raise ValueError(f"unknown pattern {spec.pattern!r}")


def _print_motifs(motif: str, step: float, rng: np.random.Generator) -> np.ndarray:
    c = _Canvas()
    img, d = c.new()
    s = step * SS
    n = int(SPRITE * SS / s) + 2
    off = rng.random(2) * s
    for i in range(-1, n):
        for j in range(-1, n):
            cx = off[0] + (j + 0.5 * (i % 2)) * s + rng.uniform(-0.12, 0.12) * s
            cy = off[1] + i * s + rng.uniform(-0.12, 0.12) * s
            _motif(d, motif, cx, cy, 0.36 * s, rng.uniform(0, 2 * math.pi))
    return c.to_array(img)


def _star_points(cx: float, cy: float, r: float, rot: float, n: int = 5, inner: float = 0.45) -> list:
    return [(cx + (r if k % 2 == 0 else r * inner) * math.cos(rot + k * math.pi / n),
             cy + (r if k % 2 == 0 else r * inner) * math.sin(rot + k * math.pi / n)) for k in range(2 * n)]


def _motif(d: ImageDraw.ImageDraw, motif: str, cx: float, cy: float, r: float, rot: float) -> None:
    if motif == "stars":
        d.polygon(_star_points(cx, cy, r, rot), 255)
    elif motif == "triangles":
        d.polygon([(cx + r * math.cos(rot + k * 2 * math.pi / 3), cy + r * math.sin(rot + k * 2 * math.pi / 3))
                   for k in range(3)], 255)
    elif motif == "flowers":
        for k in range(5):
            a = rot + k * 2 * math.pi / 5
            px, py = cx + 0.5 * r * math.cos(a), cy + 0.5 * r * math.sin(a)
            d.ellipse([px - 0.42 * r, py - 0.42 * r, px + 0.42 * r, py + 0.42 * r], 255)
        d.ellipse([cx - 0.25 * r, cy - 0.25 * r, cx + 0.25 * r, cy + 0.25 * r], 0)
    elif motif == "waves":
        pts = [(cx - r + t * 2 * r / 12, cy + 0.35 * r * math.sin(t * math.pi / 3)) for t in range(13)]
        d.line(pts, 255, width=max(2, int(0.32 * r)))
    else:
        raise ValueError(f"unknown print motif {motif!r}")


# -- label: brand text and logo ----------------------------------------------------------------

@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _logo(d: ImageDraw.ImageDraw, logo: str, cx: float, cy: float, r: float) -> None:
    if logo == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], 255)
    elif logo == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], 255)
        d.ellipse([cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r], 0)
    elif logo == "triangle":
        d.polygon([(cx, cy - r), (cx + 0.95 * r, cy + 0.75 * r), (cx - 0.95 * r, cy + 0.75 * r)], 255)
    elif logo == "star":
        d.polygon(_star_points(cx, cy, 1.1 * r, -math.pi / 2), 255)
    elif logo == "diamond":
        d.polygon([(cx, cy - r), (cx + 0.75 * r, cy), (cx, cy + r), (cx - 0.75 * r, cy)], 255)
    elif logo == "cross":
        w = 0.34 * r
        d.rectangle([cx - w, cy - r, cx + w, cy + r], 255)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], 255)
    elif logo == "hexagon":
        d.polygon([(cx + r * math.cos(k * math.pi / 3), cy + r * math.sin(k * math.pi / 3)) for k in range(6)], 255)
    elif logo == "heart":
        d.ellipse([cx - r, cy - 0.8 * r, cx, cy + 0.15 * r], 255)
        d.ellipse([cx, cy - 0.8 * r, cx + r, cy + 0.15 * r], 255)
        d.polygon([(cx - 0.96 * r, cy - 0.15 * r), (cx + 0.96 * r, cy - 0.15 * r), (cx, cy + r)], 255)
    else:
        raise ValueError(f"unknown logo {logo!r}")


def _label_masks(spec: ProductSpec, label: Box) -> tuple[np.ndarray | None, np.ndarray]:
    """(patch, ink): the label patch (only on patterned products, where text on the pattern would be
    unreadable) and the ink of text and logo, as coverage arrays."""
    c = _Canvas()
    ink, d = c.new()
    x0, y0, x1, y1 = (v * c.n for v in label)
    w, h = x1 - x0, y1 - y0
    has_text, has_logo = spec.text != "none", spec.logo != "none"
    if has_logo:
        ly = y0 + (0.30 if has_text else 0.5) * h
        r = min(0.24 * h if has_text else 0.34 * h, 0.32 * w)
        _logo(d, spec.logo, x0 + w / 2, ly, r)
    if has_text:
        ty = y0 + (0.74 if has_logo else 0.5) * h
        box_h = (0.40 if has_logo else 0.6) * h
        size = int(min(box_h, 1.7 * 0.9 * w / len(spec.text)))
        font = _font(size)
        while size > 8:
            bx = font.getbbox(spec.text)
            if bx[2] - bx[0] <= 0.9 * w and bx[3] - bx[1] <= box_h:
                break
            size = int(size * 0.9)
            font = _font(size)
        d.text((x0 + w / 2, ty), spec.text, fill=255, font=font, anchor="mm")
    patch = None
    if spec.pattern != "plain" and (has_text or has_logo):
        # The patch hugs the ink (plus a margin), so as much of the pattern as possible stays visible.
        bx0, by0, bx1, by1 = ink.getbbox() or (x0, y0, x1, y1)
        m = 0.045 * c.n
        p_img, p = c.new()
        p.rounded_rectangle([max(x0, bx0 - m), max(y0, by0 - m), min(x1, bx1 + m), min(y1, by1 + m)],
                            radius=int(0.03 * c.n), fill=255)
        patch = c.to_array(p_img)
    return patch, c.to_array(ink)


# -- the sprite --------------------------------------------------------------------------------

def _rgb(name_or_rgb: str | tuple[int, int, int]) -> np.ndarray:
    rgb = PALETTE[name_or_rgb] if isinstance(name_or_rgb, str) else name_or_rgb
    return np.array(rgb, np.float32).reshape(1, 1, 3) / 255.0


def _luma(rgb: np.ndarray) -> float:
    return float(rgb.reshape(3) @ np.array([0.299, 0.587, 0.114], np.float32))


def _mix(base: np.ndarray, colour: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """``base`` blended towards ``colour`` by ``cover`` (in place: ``base`` is a private buffer)."""
    base += (colour - base) * cover[..., None]
    return base


def render_product(spec: ProductSpec, rng: np.random.Generator | None = None) -> Image.Image:
    """The product as a SPRITE x SPRITE RGBA image, front-on, transparent around it."""
    rng = rng if rng is not None else np.random.default_rng(spec.variant)
    geo = SILHOUETTES[spec.category](_Canvas())
    main, second = _rgb(spec.colour), _rgb(spec.colour2)

    rgb = np.broadcast_to(main, (SPRITE, SPRITE, 3)).astype(np.float32)  # a writable copy
    rgb = _mix(rgb, second, pattern_coverage(spec, rng))
    patch, ink = _label_masks(spec, geo.label)
    if patch is not None:
        # Ink on the cream label: the first of main colour, secondary colour, near-black that stands
        # out in luminance (what survives blur and JPEG).
        rgb = _mix(rgb, _rgb(CREAM), patch)
        ink_rgb = next((c for c in (main, second) if _luma(_rgb(CREAM)) - _luma(c) > 0.35), _rgb(INK_DARK))
    else:
        ink_rgb = second  # chosen in the catalogue to contrast with the main colour
    rgb = _mix(rgb, ink_rgb, ink)

    alpha = geo.body.copy()
    trim_colours = {"colour2": second, "cream": _rgb(CREAM), "silver": _rgb(SILVER), "body": main,
                    "dark": main * 0.35}
    for mask, kind in geo.trims:
        rgb = _mix(rgb, trim_colours[kind], mask)
        alpha = np.maximum(alpha, mask)

    rgb = rgb * geo.shade[..., None]
    # A dark rim where the silhouette ends: objects, not stickers.
    inner = alpha.copy()
    for axis in (0, 1):
        for shift in (-2, 2):
            np.minimum(inner, np.roll(alpha, shift, axis=axis), out=inner)
    rgb = rgb * (1 - 0.45 * np.clip(alpha - inner, 0, 1))[..., None]
    out = np.dstack([np.clip(rgb, 0, 1) * 255, alpha * 255]).round().astype(np.uint8)
    return Image.fromarray(out, "RGBA")
