"""Regenerate the cross-platform test vectors in this folder (see README.md).

    python tests/vectors/make_vectors.py [--out DIR]

Deterministic: fixed seeds, fixed provenance strings, so a re-run rewrites identical index
files and JSON (image files are re-encoded by the installed Pillow; the expected tensors are
always computed from the files as written). The Java, Swift and JavaScript cores test against
exactly these files, so change them only together with docs/index-format.md or
docs/preprocessing.md.
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from deepproduct.sdk.gallery_index import GalleryIndex, normalize_rows
from deepproduct.sdk.index_format import HEADER_SIZE, crc32_update
from deepproduct.sdk.preprocessing import (
    PreprocessingSpec,
    decode_image,
    preprocess_image,
    resize_weights,
    resized_size,
)

DIM, COUNT = 16, 40
SPACE_ID = "test-vectors-space-v1"
INFO = {"created_by": "tests/vectors/make_vectors.py", "created_at": "2026-01-01T00:00:00Z"}
SCORE_ATOL = 1e-6
TENSOR_ATOL = 1e-6
JPEG_ATOL = 0.02
CATEGORIES = ["mug", "shoe", "hat", "bag"]


def _f32(values: np.ndarray) -> list:
    """float32 values as JSON numbers that parse back to exactly the same float32."""
    return np.asarray(values, dtype=np.float32).astype(np.float64).tolist()


# --------------------------------------------------------------------------- gallery indexes
def gallery() -> tuple[np.ndarray, list[str], list[dict]]:
    rng = np.random.default_rng(20260101)
    emb = rng.standard_normal((COUNT, DIM)).astype(np.float32)
    emb[:, 0] *= 3.0  # uneven dimensions, so per-dimension int8 scales differ
    emb[:, 5] *= 0.2
    emb[23] = emb[7]  # an exact tie between two products (tie-break: smaller position first)
    ids = [f"p{i // 2:03d}" for i in range(COUNT)]
    ids[23] = "p-café-23"  # non-ASCII UTF-8 in the ids table
    items = []
    for i in range(COUNT):
        item = {"title": f"Item {i}", "url": f"https://example.com/p/{ids[i]}", "price": float(10 + i % 5),
                "in_stock": i % 3 != 0}
        if i != 11:  # item 11 lacks the category: never matches a category filter
            item["category"] = CATEGORIES[i % 4]
        items.append(item)
    items[5]["tags"] = ["ceramic", "blue"]
    return emb, ids, items


def queries(emb: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(7)
    q = rng.standard_normal((6, DIM)).astype(np.float32)
    q[4] = 3.0 * emb[7]  # not unit length; exact tie between positions 7 and 23
    q[5] = emb[12] + 0.05 * rng.standard_normal(DIM).astype(np.float32)
    return q


CASES = [
    {"k": 5, "filter": None},
    {"k": COUNT, "filter": None},
    {"k": 5, "filter": {"category": "mug"}},
    {"k": 3, "filter": {"category": ["mug", "hat"]}},
    {"k": 4, "filter": {"price": 12, "in_stock": True}},
    {"k": 5, "filter": {"category": "none-such"}},
]


#: Product-level search (unique_products): the top k distinct products, each by its best image.
PRODUCT_CASES = [
    {"k": 3, "filter": None},
    {"k": COUNT, "filter": None},  # more than the 21 distinct products: all of them
    {"k": 2, "filter": {"category": ["mug", "hat"]}},
    {"k": 3, "filter": {"category": "none-such"}},
]


def reference_scores(index: GalleryIndex, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 scores from the float32 weights, exactly as docs/index-format.md defines them."""
    weights = index.prepare_queries(q).astype(np.float64)
    stored = np.asarray(index.vectors, dtype=np.float64)
    return weights, weights @ stored.T


def expected_results(index: GalleryIndex, q: np.ndarray, cases: list[dict] = CASES,
                     unique_products: bool = False) -> list[dict]:
    """Each case's top k per query: score desc, then position asc; with ``unique_products`` each
    product's first (= best) item only, in that order, k of them."""
    _, scores = reference_scores(index, q)
    out = []
    for case in cases:
        rows = index.filter_rows(case["filter"])
        eligible = np.arange(len(index)) if rows is None else rows
        results = []
        for qi in range(len(q)):
            s = scores[qi, eligible]
            order = np.lexsort((eligible, -s)).tolist()
            if unique_products:
                order = _first_per_product(order, [index.product_ids[p] for p in eligible])
            order = order[: case["k"]]
            pos = [int(eligible[i]) for i in order]
            results.append({"positions": pos, "product_ids": [index.product_ids[p] for p in pos],
                            "scores": [float(s[i]) for i in order]})
        out.append({**case, **({"unique_products": True} if unique_products else {}), "results": results})
    return out


def _first_per_product(order: list[int], product_ids: list[str]) -> list[int]:
    seen: set[str] = set()
    first = []
    for i in order:
        if product_ids[i] not in seen:
            seen.add(product_ids[i])
            first.append(i)
    return first


def write_indexes(out: Path) -> dict:
    emb, ids, items = gallery()
    q = queries(emb)
    (out / "index").mkdir(parents=True, exist_ok=True)
    q.astype("<f4").tofile(out / "index" / "queries.f32")
    doc: dict = {"dim": DIM, "count": COUNT, "embedding_space_id": SPACE_ID, "score_atol": SCORE_ATOL,
                 "queries_file": "queries.f32", "queries_shape": list(q.shape), "queries": _f32(q),
                 "normalized_queries": _f32(normalize_rows(q)), "indexes": {}}
    for storage in ("float32", "int8"):
        index = GalleryIndex.from_embeddings(emb, ids, items, storage=storage, embedding_space_id=SPACE_ID,
                                             info={"note": "DeepProduct cross-platform test vector"})
        name = f"{storage}.dpindex"
        index.save(out / "index" / name, info=INFO)
        entry = {"file": name, "storage": storage, "cases": expected_results(index, q),
                 "product_cases": expected_results(index, q, PRODUCT_CASES, unique_products=True)}
        if storage == "int8":
            entry["scales"] = _f32(index.scales)
            entry["int8_weights"] = _f32(index.prepare_queries(q))
        doc["indexes"][storage] = entry
    empty = GalleryIndex(DIM, "float32", SPACE_ID)
    empty.save(out / "index" / "empty.dpindex", info=INFO)
    (out / "index" / "expected.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
    write_bad_files(out)
    return doc


def _patch_header(raw: bytearray) -> None:
    struct.pack_into("<I", raw, HEADER_SIZE - 4, crc32_update(0, bytes(raw[:HEADER_SIZE - 4])))


def write_bad_files(out: Path) -> None:
    good = (out / "index" / "float32.dpindex").read_bytes()
    bad = out / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "truncated.dpindex").write_bytes(good[: len(good) // 2])
    newer = bytearray(good)
    struct.pack_into("<H", newer, 8, 2)  # format_version 2, header CRC fixed: only the version is wrong
    _patch_header(newer)
    (bad / "version2.dpindex").write_bytes(bytes(newer))
    flipped = bytearray(good)
    offset = struct.unpack_from("<Q", good, 104)[0]  # the vector block
    flipped[offset + 5] ^= 0x01
    (bad / "bad_checksum.dpindex").write_bytes(bytes(flipped))
    header = bytearray(good)
    header[200] ^= 0xFF  # a reserved header byte: only the header CRC can notice
    (bad / "bad_header_crc.dpindex").write_bytes(bytes(header))
    (bad / "not_an_index.dpindex").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    import importlib.util  # the hostile corpus (bad/expected.json) lives in its own script

    spec = importlib.util.spec_from_file_location("make_bad_vectors", Path(__file__).with_name("make_bad_vectors.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_bad_vectors(out)


# --------------------------------------------------------------------------- images
def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth gradients plus an asymmetric block: resampling errors and wrong rotations both show."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 128 + 100 * np.sin(x / 3 + y / 5)], -1)
    arr[: h // 3, : w // 4] = [250, 20, 20]
    arr += rng.normal(0, 6, arr.shape)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def write_images(out: Path, spec: PreprocessingSpec) -> dict:
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}

    rgb = _pattern(48, 64, 1)
    Image.fromarray(rgb).convert("L").save(folder / "grey.png")
    made["grey.png"] = "8-bit greyscale (L), 64x48: shrink"
    Image.fromarray(_pattern(40, 50, 2)).quantize(colors=16, method=Image.Quantize.MEDIANCUT).save(
        folder / "palette.png")
    made["palette.png"] = "palette (P, 16 colours), 50x40"
    pal = Image.fromarray(_pattern(52, 40, 3)).quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    pal.save(folder / "palette_trns.png", transparency=2)
    made["palette_trns.png"] = "palette with a transparent index (tRNS), 40x52: composited over white"
    rgba = np.dstack([_pattern(45, 60, 4), np.tile(np.linspace(0, 255, 60).astype(np.uint8), (45, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    made["rgba.png"] = "RGBA with an alpha ramp 0..255 left to right, 60x45: composited over white"
    y, x = np.mgrid[0:60, 0:44]
    grey16 = ((x * 1489 + y * 1013) % 65536).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    made["grey16.png"] = "16-bit greyscale PNG (I;16), 44x60: full 16-bit precision, v / 65535"
    cmyk = np.dstack([_pattern(40, 48, 5), np.tile(np.linspace(0, 200, 48).astype(np.uint8), (40, 1))])
    Image.fromarray(cmyk, "CMYK").save(folder / "cmyk.jpg", quality=95)
    made["cmyk.jpg"] = "CMYK JPEG, 48x40"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    Image.fromarray(_pattern(40, 72, 6)).save(folder / "exif_rotated.jpg", quality=95, exif=exif)
    made["exif_rotated.jpg"] = "JPEG stored 72x40 with EXIF Orientation 6: upright 40x72"
    Image.fromarray(_pattern(72, 96, 7)).save(folder / "shrink.png")
    made["shrink.png"] = "RGB 96x72: antialiased shrink by ~1.95"
    Image.fromarray(_pattern(20, 100, 8)).save(folder / "wide.png")
    made["wide.png"] = "RGB 100x20 (non-square 5:1): enlarge, crop the centre"
    Image.fromarray(_pattern(7, 9, 9)).save(folder / "tiny.png")
    made["tiny.png"] = "RGB 9x7: bilinear enlargement by ~5.3"

    entries = []
    for name, description in made.items():
        path = folder / name
        decoded = decode_image(path, spec.max_pixels, spec.alpha_background)
        unit = decoded / 255.0 if decoded.dtype == np.uint8 else decoded
        stem = name.rsplit(".", 1)[0]
        unit.astype("<f4").tofile(folder / f"{stem}.decoded.f32")
        tensor = preprocess_image(path, spec, "NCHW")
        tensor.astype("<f4").tofile(folder / f"{stem}.nchw.f32")
        h, w = unit.shape[:2]
        new_h, new_w = resized_size(h, w, spec.resize_shorter)
        with Image.open(path) as img:
            mode = img.mode
        entries.append({
            "file": name, "description": description, "pillow_mode": mode,
            "decoded_file": f"{stem}.decoded.f32", "decoded_shape": [h, w, 3],
            "resized_size": [new_h, new_w],
            "crop_offset": [(new_h - spec.input_size) // 2, (new_w - spec.input_size) // 2],
            "expected_file": f"{stem}.nchw.f32", "expected_shape": list(tensor.shape),
            "full_pipeline_atol": JPEG_ATOL if name.endswith(".jpg") else TENSOR_ATOL,
        })
    idx, w = resize_weights(9, 37, 0, 4)
    doc = {"spec": spec.to_dict(), "tensor_atol": TENSOR_ATOL, "images": entries,
           "resize_weights_example": {"in": 9, "out": 37, "first_outputs": 4, "indices": idx.tolist(),
                                      "weights": w.tolist()}}
    (folder / "expected.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    write_indexes(args.out)
    write_images(args.out, PreprocessingSpec.for_input_size(32))
    print(f"wrote test vectors to {args.out}")


if __name__ == "__main__":
    main()
