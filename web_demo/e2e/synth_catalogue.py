"""A small deterministic product catalogue for the web demo's end-to-end test.

Each product is a distinctive flat-lay picture (background, object shape, colour, pattern);
the gallery holds two clean shots per product, the queries are phone-style photos of a few of
them (off-centre crop, slight rotation, lighting change, a different size and aspect).
Why our own instead of a data set: the test must run offline on a fresh machine in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

COLOURS = {
    "red": (200, 40, 40), "blue": (40, 70, 200), "green": (40, 150, 70), "yellow": (230, 200, 40),
    "purple": (130, 50, 160), "orange": (240, 130, 30), "black": (30, 30, 30), "teal": (20, 140, 150),
}
KINDS = {  # kind -> (category, shape drawer name)
    "mug": ("kitchen", "mug"), "bowl": ("kitchen", "bowl"), "lamp": ("home", "lamp"),
    "vase": ("home", "vase"), "sneaker": ("shoes", "sneaker"), "boot": ("shoes", "boot"),
}


def product_list() -> list[dict]:
    """16 products: no two share both colour and pattern, and same-colour products differ in kind."""
    kinds = list(KINDS)
    colours = list(COLOURS)
    out = []
    for i in range(16):
        kind = kinds[i % len(kinds)]
        colour = colours[i % len(colours)]
        pattern = ["plain", "stripes", "dots", "checks"][(i + i // len(colours)) % 4]
        out.append({"id": f"sku-{1001 + i}", "kind": kind, "colour": colour, "pattern": pattern,
                    "title": f"{colour.title()} {pattern} {kind}", "category": KINDS[kind][0]})
    return out


def _pattern(draw: ImageDraw.ImageDraw, box, pattern: str, colour) -> None:
    x0, y0, x1, y1 = box
    light = tuple(min(255, c + 90) for c in colour)
    if pattern == "stripes":
        for x in range(int(x0), int(x1), 14):
            draw.rectangle([x, y0, x + 6, y1], fill=light)
    elif pattern == "dots":
        for y in range(int(y0) + 8, int(y1), 18):
            for x in range(int(x0) + 8, int(x1), 18):
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=light)
    elif pattern == "checks":
        for y in range(int(y0), int(y1), 16):
            for x in range(int(x0) + (int(y) // 16 % 2) * 16, int(x1), 32):
                draw.rectangle([x, y, x + 15, y + 15], fill=light)


def render(product: dict, size=(320, 320), variant: int = 0) -> Image.Image:
    """The product on a light backdrop; ``variant`` shifts lighting/backdrop slightly (2nd gallery shot)."""
    w, h = size
    bg = (236, 232, 226) if variant == 0 else (222, 226, 232)
    img = Image.new("RGB", size, bg)
    colour = COLOURS[product["colour"]]
    shape = KINDS[product["kind"]][1]
    cx, cy = w / 2, h / 2
    body = [cx - 0.28 * w, cy - 0.25 * h, cx + 0.28 * w, cy + 0.3 * h]
    layer = Image.new("L", size, 0)
    m = ImageDraw.Draw(layer)
    if shape == "mug":
        m.rectangle(body, fill=255)
        m.ellipse([body[2] - 20, cy - 40, body[2] + 50, cy + 40], outline=255, width=14)
    elif shape == "bowl":
        m.pieslice([cx - 0.38 * w, cy - 0.35 * h, cx + 0.38 * w, cy + 0.35 * h], 0, 180, fill=255)
    elif shape == "lamp":
        m.polygon([(cx - 0.3 * w, cy), (cx + 0.3 * w, cy), (cx + 0.15 * w, cy - 0.32 * h), (cx - 0.15 * w, cy - 0.32 * h)], fill=255)
        m.rectangle([cx - 8, cy, cx + 8, cy + 0.3 * h], fill=255)
        m.rectangle([cx - 0.18 * w, cy + 0.3 * h, cx + 0.18 * w, cy + 0.36 * h], fill=255)
    elif shape == "vase":
        m.ellipse([cx - 0.25 * w, cy - 0.1 * h, cx + 0.25 * w, cy + 0.38 * h], fill=255)
        m.rectangle([cx - 0.08 * w, cy - 0.38 * h, cx + 0.08 * w, cy], fill=255)
    elif shape == "sneaker":
        m.polygon([(cx - 0.4 * w, cy + 0.2 * h), (cx - 0.35 * w, cy - 0.1 * h), (cx - 0.05 * w, cy - 0.12 * h),
                   (cx + 0.4 * w, cy + 0.08 * h), (cx + 0.4 * w, cy + 0.2 * h)], fill=255)
    elif shape == "boot":
        m.polygon([(cx - 0.25 * w, cy + 0.3 * h), (cx - 0.25 * w, cy - 0.38 * h), (cx + 0.05 * w, cy - 0.38 * h),
                   (cx + 0.05 * w, cy + 0.05 * h), (cx + 0.38 * w, cy + 0.15 * h), (cx + 0.38 * w, cy + 0.3 * h)], fill=255)
    fill = Image.new("RGB", size, colour)
    _pattern(ImageDraw.Draw(fill), (0, 0, w, h), product["pattern"], colour)
    shadow = layer.filter(ImageFilter.GaussianBlur(8)).point(lambda v: v // 3)
    img.paste((120, 120, 120), (6, 10), shadow)
    img.paste(fill, (0, 0), layer)
    return img


def phone_photo(product: dict, seed: int) -> Image.Image:
    """A query: larger render, off-centre crop, small rotation, lighting change, other aspect."""
    rng = np.random.default_rng(seed)
    big = render(product, size=(480, 480), variant=int(rng.integers(2)))
    big = big.rotate(float(rng.uniform(-5, 5)), resample=Image.BICUBIC, fillcolor=(230, 228, 224))
    left, top = int(rng.integers(10, 30)), int(rng.integers(10, 30))
    crop = big.crop((left, top, left + 440, top + 380))
    crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.9, 1.05)))
    return ImageEnhance.Contrast(crop).enhance(float(rng.uniform(0.9, 1.1)))


def write_catalogue(root: Path, query_products=(2, 7, 12)) -> tuple[list[dict], list[dict]]:
    """Writes gallery/<sku>/<v>.png with gallery/products.json (titles, categories: the layout
    ``dp-search build --images`` reads) and queries/q<n>_<sku>.png; returns (gallery, queries)."""
    products = product_list()
    gallery, queries = [], []
    (root / "queries").mkdir(parents=True, exist_ok=True)
    for p in products:
        (root / "gallery" / p["id"]).mkdir(parents=True, exist_ok=True)
        for v in range(2):
            rel = f"gallery/{p['id']}/{v}.png"
            render(p, variant=v).save(root / rel)
            gallery.append({"path": rel, "product_id": p["id"], "title": p["title"], "category": p["category"]})
    sidecar = {p["id"]: {"title": p["title"], "category": p["category"]} for p in products}
    (root / "gallery" / "products.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    for n, i in enumerate(query_products):
        p = products[i]
        rel = f"queries/q{n}_{p['id']}.png"
        phone_photo(p, seed=100 + n).save(root / rel)
        queries.append({"path": rel, "product_id": p["id"], "title": p["title"]})
    return gallery, queries


if __name__ == "__main__":
    import sys

    g, q = write_catalogue(Path(sys.argv[1]))
    print(f"{len(g)} gallery images, {len(q)} queries")
