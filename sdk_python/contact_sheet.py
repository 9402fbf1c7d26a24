"""A contact sheet: each query photo next to its top-K gallery images, for reports and demos.

A number like Recall@1 says how often retrieval works; a sheet shows *how* it fails (colour
confusions, crops, near-duplicate products), which is what a reviewer of the demo needs.
Green frames mark items of the query's own product (when it is known), red the others.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from .fileio import atomic_path
from .gallery_index import SearchHit
from .locking import ordinary_file_mode
from .output_policy import png_info
from .preprocessing import ImageDecodeError, load_rgb

_GREEN, _RED, _GREY = (30, 160, 60), (200, 40, 40), (150, 150, 150)


def _thumb(path: Path | None, size: int) -> Image.Image:
    tile = Image.new("RGB", (size, size), (255, 255, 255))
    if path is None:
        return tile
    try:
        rgb = load_rgb(path)
    except ImageDecodeError:
        ImageDraw.Draw(tile).text((4, size // 2), "unreadable", fill=_RED)
        return tile
    img = Image.fromarray((rgb * 255 + 0.5).astype("uint8"))
    img = ImageOps.contain(img, (size, size))
    tile.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return tile


def write_contact_sheet(out: str | os.PathLike, queries: Sequence[str | os.PathLike],
                        results: Sequence[Sequence[SearchHit]], image_root: str | os.PathLike | None,
                        query_products: Sequence[str | None] | None = None, thumb: int = 112) -> Path:
    """One row per query: the photo, then its hits (gallery images resolved under ``image_root``)."""
    k = max((len(r) for r in results), default=0)
    pad, caption = 6, 14
    cell_w, cell_h = thumb + pad, thumb + pad + caption
    sheet = Image.new("RGB", (pad + cell_w * (k + 1), pad + cell_h * max(len(queries), 1)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    root = Path(image_root) if image_root else None
    for row, (query, hits) in enumerate(zip(queries, results, strict=True)):
        y = pad + row * cell_h
        sheet.paste(_thumb(Path(query), thumb), (pad, y))
        want = query_products[row] if query_products else None
        draw.text((pad, y + thumb + 2), (want or Path(query).name)[:18], fill=(0, 0, 0))
        for col, hit in enumerate(hits, start=1):
            x = pad + col * cell_w
            path = gallery_image_path(root, hit.metadata.get("image"))
            sheet.paste(_thumb(path, thumb), (x, y))
            colour = _GREY if want is None else (_GREEN if hit.product_id == want else _RED)
            draw.rectangle([x - 2, y - 2, x + thumb + 1, y + thumb + 1], outline=colour, width=2)
            draw.text((x, y + thumb + 2), f"{hit.product_id[:10]} {hit.score:.3f}", fill=(0, 0, 0))
    out = Path(out)
    with atomic_path(out, mode=ordinary_file_mode()) as tmp:
        sheet.save(tmp, "PNG", pnginfo=png_info())
    return out


def gallery_image_path(root: Path | None, image: object) -> Path | None:
    """The gallery image an index's metadata names, only when it lies inside ``root``.

    The metadata is untrusted (an index is a file anyone can hand over): an absolute path or
    ``../..`` would paste any image on the machine into the sheet, so those give a blank tile.
    """
    if root is None or not isinstance(image, str) or not image:
        return None
    base = root.resolve()
    path = (base / image).resolve()
    return path if base in path.parents else None
