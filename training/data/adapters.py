"""Real-data adapters: turn published product-retrieval data sets into a dataset manifest.

Each adapter reads a data set's own index files, writes a manifest CSV whose ``path`` cells point
at the *original* images (relative to the CSV's folder; nothing is copied), and first checks that
every listed image exists (the error lists the first missing ones). Formats, as published:

Stanford Online Products (Song et al. 2016), ``Stanford_Online_Products/``
    ``Ebay_train.txt`` and ``Ebay_test.txt``: space-separated, one header line
    ``image_id class_id super_class_id path``, then e.g. ``1 1 1 bicycle_final/111085122871_0.JPG``.
    Paths are relative to the folder holding the lists. 11,318 train and 11,316 test classes; the
    super class is the path's first folder without ``_final`` (bicycle ... toaster).
    SOP has one domain (eBay listing photos, no consumer photos), so every row is ``domain=shop``,
    and evaluation uses the in-shop protocol of docs/method.md section 5: leave-one-out over all images
    of the split (the evaluator picks it when a split has only one domain).

DeepFashion In-shop Clothes Retrieval, ``In-shop Clothes Retrieval Benchmark/``
    ``Eval/list_eval_partition.txt``: line 1 the number of images, line 2 the header
    ``image_name item_id evaluation_status``, then whitespace-separated rows
    ``img/WOMEN/Dresses/id_00000002/02_1_front.jpg id_00000002 train``; the status is ``train``,
    ``query`` or ``gallery``. Image names are relative to ``Img/`` (where ``img.zip`` unpacks).
    Mapping: train -> split train (domain shop: training images have no query/gallery role);
    query -> test/user, gallery -> test/shop, so the benchmark's query-to-gallery protocol is our
    consumer-to-shop evaluation. Attributes from the path: gender, category, view.

DeepFashion Consumer-to-shop Clothes Retrieval, ``Consumer-to-shop Clothes Retrieval Benchmark/``
    ``Eval/list_eval_partition.txt``: line 1 a count, line 2 the header
    ``image_pair_name_1 image_pair_name_2 item_id evaluation_status``, then rows
    ``img/TOPS/Summer_Wear/id_00000001/comsumer_01.jpg img/TOPS/Summer_Wear/id_00000001/shop_01.jpg
    id_00000001 train`` (name 1 is the consumer photo, name 2 the shop image; "comsumer" is the data
    set's own spelling). Status ``train``, ``val`` or ``test``; items do not overlap between them.
    The published protocol's gallery is *all shop images of val + test*, so by default (``val=
    "gallery"``) val items contribute their shop images to the test split as distractors and their
    consumer photos are dropped. An image listed in many pairs appears once in the manifest.

Street2Shop-style pair lists (our generic pair format)
    A JSON file (a list of objects, or ``{"pairs": [...]}``) or a CSV file with a header, one pair
    per entry: the street / consumer photo, the shop photo and the product id, optionally a split::

        street,shop,product_id,split
        street/0001.jpg,shop/0001.jpg,sku-17,train

    Accepted names: ``street`` | ``consumer`` | ``user`` | ``photo``; ``shop`` | ``product_photo``;
    ``product_id`` | ``product`` | ``item_id``; ``split`` (``train`` | ``test``). Either image cell may
    be empty. Street2Shop itself (Kiapour et al. 2015) gives numeric photo ids (``train_pairs_<cat>.
    json``: ``{"photo": 123, "product": 45, "bbox": ...}`` plus ``retrieval_<cat>.json`` for the shop
    photos of each product); join the two into this format, and use ``template`` (``"{}.jpg"``) to
    turn ids into file names. Bounding boxes are not used. With a split column every entry needs
    ``train`` or ``test`` (and one split per product); without one, products are split with
    ``test_fraction`` and ``seed``.

ImageFolder by product
    ``ROOT/<product_id>/*.jpg`` (domain shop), or ``ROOT/<product_id>/shop/*.jpg`` and
    ``ROOT/<product_id>/user/*.jpg`` for two domains. Products are split with ``test_fraction`` and
    ``seed``.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deepproduct.sdk.dataset_manifest import DOMAINS, SPLITS, DatasetRow, write_dataset_manifest
from deepproduct.sdk.jsonio import JsonError
from deepproduct.sdk.jsonio import loads as json_loads

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_LISTED_MISSING = 10


class AdapterError(ValueError):
    """A data set whose files do not match the published format; the message names file and line."""


@dataclass
class _Entry:
    """One image before its path is made relative to the manifest."""

    image: Path
    product_id: str
    domain: str
    split: str
    attributes: dict[str, str] = field(default_factory=dict)


# -- shared helpers --------------------------------------------------------------------------------

def _finish(entries: list[_Entry], out_csv: str | os.PathLike, source: str) -> Path:
    """Check the images exist, make paths relative to the CSV's folder and write the manifest."""
    if not entries:
        raise AdapterError(f"{source}: no images listed")
    missing = [e.image for e in entries if not e.image.is_file()]
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:MAX_LISTED_MISSING])
        more = f"\n  ... and {len(missing) - MAX_LISTED_MISSING} more" if len(missing) > MAX_LISTED_MISSING else ""
        raise AdapterError(f"{source}: {len(missing)} of {len(entries)} listed images are missing, "
                           f"e.g.:\n  {shown}{more}")
    out_csv = Path(out_csv)
    base = out_csv.resolve().parent
    rows = [DatasetRow(path=Path(os.path.relpath(e.image.resolve(), base)).as_posix(), product_id=e.product_id,
                       domain=e.domain, split=e.split, attributes=e.attributes) for e in entries]
    return write_dataset_manifest(rows, out_csv)


def split_products(product_ids: Iterable[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Assign whole products to train or test (disjoint), reproducibly for a seed: the sorted ids
    are shuffled with ``random.Random(seed)`` and the first ``round(test_fraction * n)`` are test
    (at least one product in each split)."""
    ids = sorted(set(product_ids))
    if len(ids) < 2:
        raise AdapterError(f"need at least 2 products to split into train and test, found {len(ids)}")
    if not 0.0 < test_fraction < 1.0:
        raise AdapterError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    random.Random(seed).shuffle(ids)
    n_test = min(max(1, round(test_fraction * len(ids))), len(ids) - 1)
    return {pid: ("test" if i < n_test else "train") for i, pid in enumerate(ids)}


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AdapterError(f"{path}: file not found")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _find(root: Path, candidates: Iterable[str], what: str) -> Path:
    tried = []
    for rel in candidates:
        p = root / rel
        if p.is_file():
            return p
        tried.append(str(p))
    raise AdapterError(f"{root}: no {what} found (looked for {', '.join(tried)})")


def _image_base(list_file: Path, root: Path, first_image: str, extra: Iterable[Path] = ()) -> Path:
    """The folder that image names are relative to: the first candidate holding the first image."""
    candidates = [*extra, root, root / "Img", list_file.parent, list_file.parent.parent,
                  list_file.parent.parent / "Img"]
    for base in candidates:
        if (base / first_image).is_file():
            return base
    return candidates[0]  # nothing found: the missing-file check will name the images


def _deepfashion_rows(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """DeepFashion list files: a count line, a header line, then whitespace-separated rows."""
    lines = _read_lines(path)
    if len(lines) < 2:
        raise AdapterError(f"{path}: expected a count line and a header line, the file has {len(lines)} line(s)")
    if not lines[0].strip().isdigit():
        raise AdapterError(f"{path}: line 1 should be the number of entries, found {lines[0].strip()[:60]!r}")
    if lines[1].split() != header:
        raise AdapterError(f"{path}: line 2 should be the header {' '.join(header)!r}, found {lines[1].strip()!r}")
    rows = []
    for n, line in enumerate(lines[2:], start=3):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != len(header):
            raise AdapterError(f"{path}: line {n}: expected {len(header)} fields ({' '.join(header)}), "
                               f"found {len(cells)}")
        rows.append((n, cells))
    return rows


def _deepfashion_attributes(name: str, kind: str) -> dict[str, str]:
    """Attributes that DeepFashion encodes in its image paths (``img/<GROUP>/<Category>/id_x/..``)."""
    parts = name.split("/")
    if len(parts) < 5 or parts[0] != "img":
        return {}
    if kind == "inshop":
        attrs = {"gender": parts[1].lower(), "category": parts[2]}
        stem = Path(parts[-1]).stem
        if "_" in stem:
            attrs["view"] = stem.rsplit("_", 1)[1]
        return attrs
    return {"group": parts[1].lower(), "category": parts[2]}


# -- Stanford Online Products ----------------------------------------------------------------------

SOP_HEADER = ["image_id", "class_id", "super_class_id", "path"]


def sop_to_manifest(root: str | os.PathLike, out_csv: str | os.PathLike) -> Path:
    """Stanford Online Products: ``Ebay_train.txt`` / ``Ebay_test.txt`` in ``root``; all rows shop."""
    root = Path(root)
    entries: list[_Entry] = []
    for split, name in (("train", "Ebay_train.txt"), ("test", "Ebay_test.txt")):
        path = root / name
        lines = _read_lines(path)
        if not lines or lines[0].split() != SOP_HEADER:
            found = lines[0].strip() if lines else "an empty file"
            raise AdapterError(f"{path}: line 1 should be the header {' '.join(SOP_HEADER)!r}, found {found!r}")
        for n, line in enumerate(lines[1:], start=2):
            cells = line.split()
            if not cells:
                continue
            if len(cells) != 4 or not all(c.isdigit() for c in cells[:3]):
                raise AdapterError(f"{path}: line {n}: expected 'image_id class_id super_class_id path' "
                                   f"with integer ids, found {line.strip()!r}")
            super_name = cells[3].split("/", 1)[0].removesuffix("_final") if "/" in cells[3] else ""
            attrs = {"super_class_id": cells[2]}
            if super_name:
                attrs["super_class"] = super_name
            entries.append(_Entry(root / cells[3], cells[1], "shop", split, attrs))
    return _finish(entries, out_csv, f"Stanford Online Products in {root}")


def _deepfashion_partition(root: Path, header: list[str], what: str, image_column: int
                           ) -> tuple[Path, list[tuple[int, list[str]]], Path]:
    """DeepFashion's ``list_eval_partition.txt`` under ``root``: (its path, numbered rows, image base folder)."""
    part = _find(root, ["Eval/list_eval_partition.txt", "list_eval_partition.txt"], "list_eval_partition.txt")
    rows = _deepfashion_rows(part, header)
    if not rows:
        raise AdapterError(f"{part}: no {what} listed")
    return part, rows, _image_base(part, root, rows[0][1][image_column])


# -- DeepFashion In-shop ---------------------------------------------------------------------------

INSHOP_HEADER = ["image_name", "item_id", "evaluation_status"]
INSHOP_ROLES = {"train": ("train", "shop"), "query": ("test", "user"), "gallery": ("test", "shop")}


def inshop_to_manifest(root: str | os.PathLike, out_csv: str | os.PathLike) -> Path:
    """DeepFashion In-shop: query images become test/user, gallery images test/shop."""
    part, rows, base = _deepfashion_partition(Path(root), INSHOP_HEADER, "images", image_column=0)
    entries = []
    for n, (name, item, status) in rows:
        if status not in INSHOP_ROLES:
            raise AdapterError(f"{part}: line {n}: evaluation_status {status!r} is not one of "
                               f"{', '.join(INSHOP_ROLES)}")
        split, domain = INSHOP_ROLES[status]
        entries.append(_Entry(base / name, item, domain, split, _deepfashion_attributes(name, "inshop")))
    return _finish(entries, out_csv, f"DeepFashion In-shop ({part})")


# -- DeepFashion Consumer-to-shop ------------------------------------------------------------------

C2S_HEADER = ["image_pair_name_1", "image_pair_name_2", "item_id", "evaluation_status"]
VAL_CHOICES = ("gallery", "test", "train", "drop")


def consumer2shop_to_manifest(root: str | os.PathLike, out_csv: str | os.PathLike, val: str = "gallery") -> Path:
    """DeepFashion Consumer-to-shop: name 1 (consumer) -> user, name 2 (shop) -> shop.

    ``val`` says what happens to the ``val`` items: ``gallery`` (the published protocol: their shop
    images join the test gallery, their consumer photos are dropped), ``test``, ``train`` or ``drop``.
    """
    if val not in VAL_CHOICES:
        raise AdapterError(f"val must be one of {', '.join(VAL_CHOICES)}, got {val!r}")
    part, rows, base = _deepfashion_partition(Path(root), C2S_HEADER, "image pairs", image_column=1)
    seen: dict[str, tuple[str, str, int]] = {}
    entries = []
    for n, (consumer, shop, item, status) in rows:
        if status not in ("train", "val", "test"):
            raise AdapterError(f"{part}: line {n}: evaluation_status {status!r} is not one of train, val, test")
        split = status
        if status == "val":
            if val == "drop":
                continue
            split = "test" if val in ("gallery", "test") else "train"
        for name, domain in ((consumer, "user"), (shop, "shop")):
            if status == "val" and val == "gallery" and domain == "user":
                continue
            if name in seen:
                first_item, first_domain, first_line = seen[name]
                if (first_item, first_domain) != (item, domain):
                    raise AdapterError(f"{part}: line {n}: {name} is listed as {domain} of item {item} but as "
                                       f"{first_domain} of item {first_item} on line {first_line}")
                continue
            seen[name] = (item, domain, n)
            entries.append(_Entry(base / name, item, domain, split, _deepfashion_attributes(name, "c2s")))
    return _finish(entries, out_csv, f"DeepFashion Consumer-to-shop ({part})")


# -- pair lists ------------------------------------------------------------------------------------

PAIR_KEYS = {
    "street": ("street", "consumer", "user", "photo"),
    "shop": ("shop", "product_photo"),
    "product_id": ("product_id", "product", "item_id"),
    "split": ("split",),
}


def _pick_key(keys: Iterable[str], role: str) -> str | None:
    keys = list(keys)
    return next((k for k in PAIR_KEYS[role] if k in keys), None)


def _load_pairs(path: Path) -> list[tuple[str, dict]]:
    """(location, record) per pair from a JSON or CSV pair list."""
    if not path.is_file():
        raise AdapterError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:  # the strict codec: deep nesting, NaN, duplicate keys are one-line errors (docs/json.md)
            data = json_loads(path.read_bytes(), source=str(path))
        except JsonError as exc:
            raise AdapterError(str(exc)) from exc
        if isinstance(data, dict) and isinstance(data.get("pairs"), list):
            data = data["pairs"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise AdapterError(f"{path}: expected a JSON list of objects (or {{\"pairs\": [...]}})")
        return [(f"{path}: entry {i}", r) for i, r in enumerate(data)]
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            if reader.fieldnames is None:
                raise AdapterError(f"{path}: empty file, expected a header row")
            reader.fieldnames = [f.strip() for f in reader.fieldnames]
            try:
                return [(f"{path}: line {i}", r) for i, r in enumerate(reader, start=2)]
            except csv.Error as exc:
                raise AdapterError(f"{path}: line {reader.line_num}: not a readable CSV row ({exc})") from None
    raise AdapterError(f"{path}: unsupported pair list format {suffix!r}; use .json or .csv")


def pairs_to_manifest(pairs_file: str | os.PathLike, images_root: str | os.PathLike, out_csv: str | os.PathLike,
                      test_fraction: float = 0.2, seed: int = 0, template: str = "{}") -> Path:
    """Street2Shop-style (street photo, shop photo, product id[, split]) pairs; see the module doc."""
    path, images_root = Path(pairs_file), Path(images_root)
    records = _load_pairs(path)
    if not records:
        raise AdapterError(f"{path}: no pairs listed")
    keys = set().union(*(r.keys() for _, r in records))
    street_k, shop_k = _pick_key(keys, "street"), _pick_key(keys, "shop")
    product_k, split_k = _pick_key(keys, "product_id"), _pick_key(keys, "split")
    if product_k is None:
        raise AdapterError(f"{path}: missing the product id field (one of {', '.join(PAIR_KEYS['product_id'])})")
    if street_k is None and shop_k is None:
        raise AdapterError(f"{path}: missing the image fields (street: {', '.join(PAIR_KEYS['street'])}; "
                           f"shop: {', '.join(PAIR_KEYS['shop'])})")

    def cell(record: dict, key: str | None) -> str:
        value = record.get(key) if key else None
        return "" if value is None else str(value).strip()

    seen: dict[str, tuple[str, str, str]] = {}
    explicit: dict[str, tuple[str, str]] = {}  # product -> (split, where it was given)
    pending: list[tuple[str, str, str]] = []  # image name, product, domain
    for where, record in records:
        product = cell(record, product_k)
        if not product:
            raise AdapterError(f"{where}: empty {product_k!r}")
        if split_k is not None:
            split = cell(record, split_k)
            if split not in SPLITS:
                raise AdapterError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
            first = explicit.setdefault(product, (split, where))
            if first[0] != split:
                raise AdapterError(f"{where}: product {product} is in split {split!r} here but in {first[0]!r} "
                                   f"in {first[1]}; train and test products must be disjoint")
        names = [(cell(record, street_k), "user"), (cell(record, shop_k), "shop")]
        if not any(n for n, _ in names):
            raise AdapterError(f"{where}: neither a street nor a shop image")
        for name, domain in names:
            if not name:
                continue
            try:
                name = template.format(name)
            except (IndexError, KeyError, ValueError) as exc:
                raise AdapterError(f"--template {template!r} cannot format {name!r} ({type(exc).__name__}: {exc}); "
                                   "use one {{}} for the reference, e.g. '{{}}.jpg'") from None
            if name in seen:
                if seen[name][:2] != (product, domain):
                    raise AdapterError(f"{where}: {name} is the {domain} image of product {product} here but the "
                                       f"{seen[name][1]} image of product {seen[name][0]} in {seen[name][2]}")
                continue
            seen[name] = (product, domain, where)
            pending.append((name, product, domain))

    if split_k is not None:
        splits = {product: split for product, (split, _) in explicit.items()}
    else:
        splits = split_products((p for _, p, _ in pending), test_fraction, seed)
    entries = [_Entry(images_root / name, product, domain, splits[product]) for name, product, domain in pending]
    return _finish(entries, out_csv, f"pair list {path}")


# -- ImageFolder by product ------------------------------------------------------------------------

def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def imagefolder_to_manifest(root: str | os.PathLike, out_csv: str | os.PathLike, test_fraction: float = 0.2,
                            seed: int = 0) -> Path:
    """``root/<product_id>/*`` (shop) or ``root/<product_id>/{shop,user}/*``; split by product."""
    root = Path(root)
    if not root.is_dir():
        raise AdapterError(f"{root}: not a folder")
    found: list[tuple[Path, str, str]] = []
    for product_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        pid = product_dir.name
        for img in _images_in(product_dir):
            found.append((img, pid, "shop"))
        for sub in sorted(p for p in product_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if sub.name not in DOMAINS:
                raise AdapterError(f"{sub}: unexpected folder; inside a product folder only "
                                   f"{' and '.join(d + '/' for d in DOMAINS)} subfolders are understood")
            found += [(img, pid, sub.name) for img in _images_in(sub)]
    if not found:
        raise AdapterError(f"{root}: no images found (expected {root}/<product_id>/*.jpg)")
    splits = split_products((pid for _, pid, _ in found), test_fraction, seed)
    entries = [_Entry(img, pid, domain, splits[pid]) for img, pid, domain in found]
    return _finish(entries, out_csv, f"image folder {root}")
