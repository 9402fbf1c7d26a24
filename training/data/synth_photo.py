"""Turn a product sprite into a shop image (studio shot) or a phone photo (consumer snapshot).

The gap between the two is the domain gap of consumer-to-shop retrieval, and each distortion of
the phone photo stands for something a real phone photo does (the reasons are in
``deepproduct.training.data.synth``'s docstring). All randomness comes from the ``rng`` argument,
so an image is a function of its seed alone.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKIN_TONES = ((233, 190, 160), (200, 150, 115), (160, 110, 80), (110, 75, 55), (245, 210, 185))


# -- geometry ----------------------------------------------------------------------------------

def perspective_coefficients(dst: np.ndarray, src: np.ndarray) -> tuple[float, ...]:
    """PIL's 8 PERSPECTIVE coefficients mapping output points ``dst`` onto input points ``src``
    (both 4 x 2): PIL samples the input at ((a x + b y + c) / (g x + h y + 1), ...)."""
    a = []
    b = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return tuple(float(c) for c in np.linalg.solve(np.array(a, float), np.array(b, float)))


def place(sprite: Image.Image, canvas: tuple[int, int], centre: tuple[float, float], size: float,
          angle_deg: float = 0.0, jitter: float = 0.0, rng: np.random.Generator | None = None) -> Image.Image:
    """The sprite as a canvas-sized RGBA layer: scaled to ``size`` px, rotated, perspective-jittered.

    ``jitter`` moves each corner by up to that fraction of ``size``: a camera that is not square to
    the product. The sprite is first shrunk with a proper filter, then warped bilinearly.
    """
    side = max(8, int(round(size)))
    small = sprite.resize((side, side), Image.Resampling.LANCZOS) if side < sprite.width else sprite
    n = small.width
    half = size / 2
    ca, sa = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    if jitter and rng is not None:
        corners = corners + rng.uniform(-jitter, jitter, size=(4, 2)) * size
    rot = np.array([[ca, -sa], [sa, ca]])
    dst = corners @ rot.T + np.array(centre)
    src = np.array([[0, 0], [n, 0], [n, n], [0, n]], float)
    coeffs = perspective_coefficients(dst, src)
    return small.transform(canvas, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)


# -- shop images -------------------------------------------------------------------------------

def shop_photo(sprite: Image.Image, rng: np.random.Generator, size: int, take: int) -> Image.Image:
    """Studio shot: the product centred and front-on on a plain light gradient, with a soft contact
    shadow. ``take`` 0 is the main listing image, 1 a second one with another zoom and backdrop."""
    tint = rng.uniform(-6, 6, 3)
    top = np.clip(rng.uniform(238, 252) + tint, 0, 255)
    bottom = np.clip(top - rng.uniform(8, 30), 0, 255)
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    bg = (top * (1 - t) + bottom * t) * np.ones((1, size, 1), np.float32)
    canvas = Image.fromarray(bg.round().astype(np.uint8), "RGB").convert("RGBA")

    scale = (0.92 if take == 0 else 0.78) * rng.uniform(0.96, 1.04)
    prod_size = scale * size
    cx, cy = size / 2, size / 2 + (0 if take == 0 else rng.uniform(-0.03, 0.03) * size)
    layer = place(sprite, (size, size), (cx, cy), prod_size)
    bbox = layer.getchannel("A").getbbox() or (0, 0, size, size)
    shadow = Image.new("L", (size, size), 0)
    sd = ImageDraw.Draw(shadow)
    w = bbox[2] - bbox[0]
    sd.ellipse([bbox[0] + 0.08 * w, bbox[3] - 0.035 * size, bbox[2] - 0.08 * w, bbox[3] + 0.02 * size], 90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(0.02 * size))
    dark = Image.new("RGBA", (size, size), (40, 40, 40, 0))
    dark.putalpha(shadow)
    canvas = Image.alpha_composite(Image.alpha_composite(canvas, dark), layer)
    return canvas.convert("RGB")


# -- phone photos ------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Low-frequency RGB noise in [0, 1]: a few random cells, bicubically enlarged."""
    small = rng.integers(0, 256, (max(2, cells * h // w), cells, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB")
    return np.asarray(img.resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255.0


def cluttered_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A surface to put the product on: wood, a patterned cloth, tiles or a blotchy table."""
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    kind = int(rng.integers(4))
    base = rng.uniform(0.15, 0.85, 3).astype(np.float32)
    if kind == 0:  # wood grain
        warp = _smooth_noise(rng, w, h, 4)[..., 0] * 12
        grain = 0.5 + 0.5 * np.sin((x * rng.uniform(0.05, 0.15) + warp) + 0.3 * np.sin(y * 0.02))
        wood = np.array([0.55, 0.38, 0.22], np.float32) * rng.uniform(0.6, 1.3)
        img = wood * (0.75 + 0.3 * grain[..., None])
    elif kind == 1:  # cloth with its own stripes or checks: patterns that are not the product's
        period = rng.uniform(10, 40)
        a = rng.uniform(0, math.pi)
        s1 = (np.sin((x * math.cos(a) + y * math.sin(a)) * 2 * math.pi / period) > 0).astype(np.float32)
        s2 = (np.sin((x * -math.sin(a) + y * math.cos(a)) * 2 * math.pi / period) > 0).astype(np.float32)
        cover = s1 if rng.random() < 0.5 else 0.5 * (s1 + s2)
        other = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        img = base * (1 - cover[..., None]) + other * cover[..., None]
    elif kind == 2:  # tiles
        step = rng.uniform(30, 70)
        lines = ((x % step) < 2.5) | ((y % step) < 2.5)
        img = base * (0.9 + 0.2 * _smooth_noise(rng, w, h, 6)) * np.where(lines[..., None], 0.6, 1.0)
    else:  # blotchy table or sofa
        noise = _smooth_noise(rng, w, h, int(rng.integers(3, 8)))
        noise = 0.5 * noise + 0.5 * noise.mean(axis=2, keepdims=True)  # muted, as real furniture is
        img = 0.55 * base + 0.45 * noise
    img = img * (0.92 + 0.16 * _smooth_noise(rng, w, h, 24)[..., :1])
    return np.clip(img, 0, 1).astype(np.float32)


def _occluder(rng: np.random.Generator, canvas: tuple[int, int], target: tuple[float, float], size: float,
              ) -> Image.Image:
    """A thumb or finger reaching over the rim of the product (never over its middle)."""
    w, h = canvas
    layer = Image.new("RGBA", canvas, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    phi = rng.uniform(0, 2 * math.pi)
    # The fingertip sits near the product's rim; the finger comes in from outside along phi.
    tip = (target[0] + 0.42 * size * math.cos(phi), target[1] + 0.42 * size * math.sin(phi))
    far = (tip[0] + 2 * w * math.cos(phi), tip[1] + 2 * w * math.sin(phi))
    width = size * rng.uniform(0.13, 0.22)
    skin = tuple(int(c * rng.uniform(0.85, 1.05)) for c in SKIN_TONES[int(rng.integers(len(SKIN_TONES)))])
    d.line([tip, far], fill=(*skin, 255), width=int(width))
    d.ellipse([tip[0] - width / 2, tip[1] - width / 2, tip[0] + width / 2, tip[1] + width / 2], fill=(*skin, 255))
    return layer


def phone_photo(sprite: Image.Image, clutter: list[Image.Image], rng: np.random.Generator, size: int,
                ) -> tuple[Image.Image, int]:
    """A consumer's snapshot of the product (portrait 3:4, ``size`` px wide) and its JPEG quality."""
    w, h = size, int(round(size * 4 / 3))
    bg = cluttered_background(rng, w, h)
    canvas = Image.fromarray((bg * 255).round().astype(np.uint8), "RGB").convert("RGBA")

    # Fragments of other products lying around, mostly cut by the frame.
    for frag in clutter:
        fs = rng.uniform(0.45, 0.9) * w
        edge = int(rng.integers(4))
        cx = [rng.uniform(-0.1, 0.25), rng.uniform(0.75, 1.1)][edge % 2] * w if edge < 2 else rng.uniform(0, w)
        cy = rng.uniform(0, h) if edge < 2 else [rng.uniform(-0.05, 0.2), rng.uniform(0.8, 1.05)][edge % 2] * h
        canvas = Image.alpha_composite(canvas, place(frag, (w, h), (cx, cy), fs, rng.uniform(-180, 180), 0.08, rng))

    # The product: scale change, off-centre framing, rotation and perspective.
    prod_size = rng.uniform(0.62, 1.0) * w
    centre = (w / 2 + rng.uniform(-0.14, 0.14) * w, h / 2 + rng.uniform(-0.12, 0.12) * w)
    angle = rng.normal(0, 12) if rng.random() < 0.8 else rng.uniform(-35, 35)
    layer = place(sprite, (w, h), centre, prod_size, angle, rng.uniform(0.02, 0.10), rng)
    # A contact shadow so the product sits on the surface rather than floating over it.
    # (Blurred at quarter resolution: a soft shadow has no detail to lose, and it is 16x cheaper.)
    shadow_a = Image.new("L", (w, h), 0)
    shadow_a.paste(layer.getchannel("A").point(lambda v: v * 110 // 255), (int(0.015 * w), int(0.025 * w)))
    shadow_a = shadow_a.resize((w // 4, h // 4), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(0.005 * w))
    zero = Image.new("L", (w, h), 0)
    shadow = Image.merge("RGBA", (zero, zero, zero, shadow_a.resize((w, h), Image.Resampling.BILINEAR)))
    canvas = Image.alpha_composite(Image.alpha_composite(canvas, shadow), layer)
    if rng.random() < 0.5:
        canvas = Image.alpha_composite(canvas, _occluder(rng, (w, h), centre, prod_size))

    img = np.asarray(canvas.convert("RGB"), np.float32) / 255.0
    img = _lighting(img, rng)
    out = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "RGB")
    out = _blur(out, rng)
    img = np.asarray(out, np.float32)
    sigma = rng.uniform(1.5, 6.0)
    img += rng.standard_normal(img.shape[:2] + (1,), dtype=np.float32) * np.float32(sigma)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma * 0.5)
    out = Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")
    return out, int(rng.integers(35, 82))


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven light (a gradient across the frame, vignetting, sometimes a cast shadow), exposure and
    a white-balance colour cast."""
    h, w = img.shape[:2]
    xn = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    yn = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    a = rng.uniform(0, 2 * math.pi)
    light = 1.0 + rng.uniform(0.15, 0.55) * (xn * math.cos(a) + yn * math.sin(a))
    light *= 1.0 - rng.uniform(0.1, 0.45) * (xn * xn + yn * yn)
    if rng.random() < 0.3:  # a soft shadow band (the photographer's arm, a shelf)
        b = rng.uniform(0, 2 * math.pi)
        dist = xn * math.cos(b) + yn * math.sin(b) - rng.uniform(-0.3, 0.3)
        light *= 1.0 - rng.uniform(0.2, 0.4) / (1.0 + np.exp(-dist * 25))
    temp = rng.uniform(-1, 1)
    gains = np.array([1 + 0.2 * temp, 1 + rng.uniform(-0.07, 0.07), 1 - 0.2 * temp], np.float32)
    exposure = rng.uniform(0.72, 1.18)
    out = img * (light * exposure)[..., None] * gains
    sat = rng.uniform(0.7, 1.15)
    grey = out.mean(axis=2, keepdims=True)
    return grey + (out - grey) * sat


def _blur(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Defocus (Gaussian) or hand shake (a short line kernel)."""
    if rng.random() < 0.25:
        k = np.zeros((5, 5), np.float32)
        a = rng.uniform(0, math.pi)
        for t in np.linspace(-2, 2, 9):
            k[int(round(2 + t * math.sin(a))), int(round(2 + t * math.cos(a)))] += 1
        return img.filter(ImageFilter.Kernel((5, 5), k.flatten().tolist(), scale=float(k.sum())))
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.3)))


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """JPEG bytes (4:2:0 chroma subsampling, as phone cameras and web shops use)."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, subsampling=2, optimize=False)
    return buf.getvalue()
