"""The embedded benchmark: a procedural mobile product-search data set, deterministic by seed.

``dp-data synth`` (and the tests) call :func:`generate_synthetic_dataset`, which writes JPEG images
plus a dataset manifest (``deepproduct.sdk.dataset_manifest``) that says which image shows which
product, in which domain (``shop`` studio image or ``user`` phone photo) and split. It needs numpy
and Pillow only, so it runs before anything heavy is installed and on any machine.

What the data set is for
------------------------
Consumer-to-shop retrieval: a phone photo of a product must find that product's shop images among
many similar ones. Off-the-shelf ImageNet features already match coarse shape and colour, so the
catalogue (``synth_catalog``) is built in *families* sharing category and main colour whose members
differ only in identity details: pattern (plain, stripes, dots, checks, print), its scale, the
secondary colour, printed brand text or logo. Products are split by product (train and test share
no product), and the test split gets extra *distractor* products -- look-alike siblings of the test
products with shop images only -- which enlarge the gallery with near misses.

Shop images (1-2 per product)
-----------------------------
The product centred and front-on on a plain light gradient with a soft contact shadow, like a web
shop's listing; the second take uses another zoom and backdrop tone. Clean, high JPEG quality.

Phone photos (2-4 per product) and why each distortion is there
---------------------------------------------------------------
* **Cluttered background** (wood, patterned cloth, tiles, blotchy furniture): phones photograph
  products where they lie; the model must ignore surfaces, including patterned ones that look like
  product patterns.
* **Fragments of other products** around the frame (other catalogue products, cut by the image
  border; in half of the products' photos one of them is a sibling from the same family): shelves
  and tables hold more than one product, often variants side by side; the embedding must describe
  the framed product, not everything visible, and not match a neighbour's logo.
* **Perspective, rotation** (corner jitter up to 10 % of the product size, tilt ~N(0, 12 deg) with
  occasional strong tilts): a hand-held camera is never square to the product.
* **Scale change and off-centre framing** (product 62-100 % of the frame width, centre moved by up
  to 14 %; the 3:4 portrait frame is centre-cropped by the model's preprocessing, so parts of the
  product can fall outside the crop): people do not frame like a studio photographer.
* **Colour cast and shading** (white-balance shift, exposure, saturation, a light gradient,
  vignetting, sometimes a cast-shadow band): indoor light is coloured and uneven; colour is a
  strong cue, but it must be read relative to the scene, not as absolute RGB.
* **Blur** (defocus or a short hand-shake kernel) and **noise** (luminance and chroma): small phone
  sensors in dim rooms. Both attack fine detail, which is why identity details are sized to survive.
* **JPEG artefacts** (quality 35-81, 4:2:0 chroma): messaging apps and uploads recompress.
* **Partial occlusion** (a finger reaching over the product's rim in half of the photos): people
  hold what they photograph. The occluder stays at the rim so the identity remains visible.

The identity-bearing detail is sized so that it survives all of the above at 224 px: pattern
periods >= 18 px of a 256 px product sprite, brand text as large as the label allows.

Determinism: every product is rendered from its own ``numpy`` generator seeded by (seed, product
index), so the output is bit-identical for one seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepproduct.sdk.dataset_manifest import DatasetRow, write_dataset_manifest
from deepproduct.sdk.fileio import write_text_atomic
from deepproduct.sdk.locking import ordinary_file_mode
from deepproduct.training.data.staging import staged_images, staging_path
from deepproduct.training.data.synth_catalog import Catalogue, ProductSpec, make_catalogue, n_test_products
from deepproduct.training.data.synth_photo import encode_jpeg, phone_photo, shop_photo
from deepproduct.training.data.synth_shapes import render_product

GENERATOR_VERSION = 1  # bump when the same seed would give different images
MANIFEST_NAME = "manifest.csv"
IMAGES_DIR = "images"
PARAMS_NAME = "synth.json"
_MARKER = ".deepproduct-synth"  # marks an images/ folder this generator may replace
SHOP_JPEG_QUALITY = 92


@dataclass(frozen=True)
class _Task:
    """Everything one worker needs to render one product's images."""

    index: int
    spec: ProductSpec
    split: str
    clutter: tuple[ProductSpec, ...]
    n_shop: int
    n_user: int
    seed: int
    image_size: int
    folder: str  # the staging images folder


def _render_task(task: _Task) -> list[DatasetRow]:
    rng = np.random.default_rng([task.seed, 1, task.index])
    sprite = render_product(task.spec, np.random.default_rng([task.seed, 2, task.index]))
    clutter = [render_product(c, np.random.default_rng([task.seed, 3, task.index, k]))
               for k, c in enumerate(task.clutter)] if task.n_user else []
    folder = Path(task.folder) / task.spec.product_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    attrs, tags = task.spec.attributes(), task.spec.tags()

    def add(name: str, data: bytes, domain: str) -> None:
        (folder / name).write_bytes(data)
        # Phone photos carry no catalogue tags (a consumer's snapshot has no listing text).
        rows.append(DatasetRow(path=f"{IMAGES_DIR}/{task.spec.product_id}/{name}", product_id=task.spec.product_id,
                               domain=domain, split=task.split, attributes=attrs,
                               tags=tags if domain == "shop" else ()))

    for k in range(task.n_shop):
        img = shop_photo(sprite, rng, task.image_size, take=k)
        add(f"shop_{k}.jpg", encode_jpeg(img, SHOP_JPEG_QUALITY), "shop")
    for k in range(task.n_user):
        img, quality = phone_photo(sprite, clutter, rng, task.image_size)
        add(f"user_{k}.jpg", encode_jpeg(img, quality), "user")
    return rows


def plan_tasks(catalogue: Catalogue, seed: int, image_size: int, folder: str) -> list[_Task]:
    """Image counts and background clutter per product, drawn from the seed (not from workers)."""
    rng = np.random.default_rng([seed, 4])
    everyone = catalogue.all
    families: dict[tuple[str, str], list[int]] = {}
    for index, spec in enumerate(everyone):
        families.setdefault((spec.category, spec.colour), []).append(index)
    tasks = []
    for index, spec in enumerate(everyone):
        split = "train" if index < len(catalogue.train) else "test"
        distractor = index >= len(catalogue.train) + len(catalogue.test)
        n_shop = int(rng.integers(1, 3))
        n_user = 0 if distractor else int(rng.integers(2, 5))
        others = [int(i) for i in rng.choice(len(everyone), size=min(3, len(everyone)), replace=False) if i != index]
        siblings = [i for i in families[(spec.category, spec.colour)] if i != index]
        if siblings and rng.random() < 0.5:
            # Shops shelve variants side by side: half the photos have a sibling in the clutter.
            others.insert(0, siblings[int(rng.integers(len(siblings)))])
        clutter = tuple(everyone[i] for i in others[: int(rng.integers(1, 3))])
        tasks.append(_Task(index, spec, split, clutter, n_shop, n_user, seed, image_size, folder))
    return tasks


def _run(tasks: list[_Task], workers: int) -> Iterator[list[DatasetRow]]:
    if workers <= 1 or len(tasks) < 4:
        yield from map(_render_task, tasks)
        return
    # spawn, not fork: the caller may be a process with torch threads running.
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_render_task, tasks, chunksize=4)


def generate_synthetic_dataset(out_dir: str | os.PathLike, n_products: int = 400, seed: int = 0,
                               test_fraction: float = 0.3, n_distractors: int | None = None,
                               image_size: int = 288, workers: int = 2, progress: bool = False) -> Path:
    """Write the benchmark to ``out_dir`` (``images/<product>/{shop,user}_<k>.jpg``, ``manifest.csv``,
    ``synth.json`` with the parameters) and return the manifest's path.

    ``n_products`` products (train + test) are split by product with ``test_fraction``;
    ``n_distractors`` shop-only look-alike products join the test gallery (default: as many as there
    are test products). ``image_size`` is the width of every image (phone photos are 3:4 portrait).
    Images are staged in a hidden folder and the manifest is written last, atomically, so an
    interrupted run never leaves a manifest pointing at missing images.
    """
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 px, got {image_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    images = out / IMAGES_DIR
    if images.exists() and not (images / _MARKER).exists():
        raise FileExistsError(f"{images} exists and was not written by the synthetic generator; "
                              f"choose another --out folder")
    if n_distractors is None:
        n_distractors = n_test_products(n_products, test_fraction)
    catalogue = make_catalogue(np.random.default_rng([seed, 0]), n_products, test_fraction, n_distractors)

    tasks = plan_tasks(catalogue, seed, image_size, str(staging_path(images)))
    manifest = out / MANIFEST_NAME
    rows: list[DatasetRow] = []
    with staged_images(images, manifest, _MARKER, "deepproduct.training.data.synth", progress=progress,
                       total=sum(t.n_shop + t.n_user for t in tasks), unit="img", desc="synth") as advance:
        for task_rows in _run(tasks, workers):
            rows += task_rows
            advance(len(task_rows))
    params = {"generator_version": GENERATOR_VERSION, "seed": seed, "n_products": n_products,
              "test_fraction": test_fraction, "n_distractors": n_distractors, "image_size": image_size,
              "train_products": len(catalogue.train), "test_products": len(catalogue.test),
              "images": len(rows)}
    write_text_atomic(out / PARAMS_NAME, json.dumps(params, indent=2) + "\n", mode=ordinary_file_mode())
    return write_dataset_manifest(rows, manifest)
