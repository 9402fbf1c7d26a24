"""``dp-data``: make dataset manifests (the embedded synthetic benchmark or real data sets) and
summarise them. Everything it writes is a manifest in the format of ``docs/dataset-manifest.md``.

It imports numpy, Pillow and click only (never torch), so data can be prepared before the training
extras are installed.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import click

from deepproduct.sdk.cli_boundary import boundary, terminal_safe
from deepproduct.sdk.dataset_manifest import DOMAINS, SPLITS, DatasetManifestError, read_dataset_manifest
from deepproduct.sdk.fileio import atomic_path
from deepproduct.sdk.locking import folder_lock, ordinary_file_mode
from deepproduct.sdk.output_policy import (
    OutputRefused,
    check_file_output,
    check_folder_output,
    png_info,
    write_marker,
)

OUT_CSV = click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                       help="Manifest CSV to write (image paths are stored relative to its folder).")
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _adapters():
    # Imported on use: `dp-data stats` and `synth` do not need them.
    from deepproduct.training.data import adapters

    return adapters


def _report(manifest_path: Path) -> None:
    m = read_dataset_manifest(manifest_path)
    click.echo(f"wrote {manifest_path}: {len(m.rows)} images of {len(m.products())} products "
               f"({len(m.products('train'))} train, {len(m.products('test'))} test)")


def _run_adapter(fn, *args, out: Path, inputs: list[Path], **kwargs) -> None:
    """Run an adapter after the output policy: the manifest is never one of its inputs (a pair
    list, an image folder's file) -- it may sit beside the images it lists."""
    check_file_output(out, inputs, what="manifest (--out)", kind="csv-manifest")
    _report(fn(*args, out, **kwargs))


def _finish(path: Path, start: float, *notes: str) -> None:
    """A generator's closing lines: what it wrote, any notes, how long it took."""
    _report(path)
    for note in notes:
        click.echo(note)
    click.echo(f"took {time.perf_counter() - start:.1f} s")


def _claim_folder(out: Path, inputs: list) -> None:
    """A generator's --out under the output policy: missing, empty, or a folder dp-data marked (a
    rerun regenerates it: the generators are deterministic by seed); then marked as ours."""
    check_folder_output(out, inputs, overwrite=True, what="--out folder", kind="generated-dataset")
    out.mkdir(parents=True, exist_ok=True)
    # Held until the command ends: a second generator into the same folder fails at once instead
    # of interleaving two data sets (two synth runs once wrote a manifest of 30 missing images).
    click.get_current_context().with_resource(folder_lock(out, out, ValueError))
    write_marker(out, "dp-data", "generated-dataset")


def _generator_options(params_file: str, products: int, products_help: str):
    """``--out``, ``--products`` and ``--seed``, the first options of every image generator (synth, transfer)."""
    def decorate(command):
        for option in reversed([  # click lists a command's options in decorator order, top first
            click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
                         help=f"Folder to write images/, manifest.csv and {params_file} into."),
            click.option("--products", default=products, show_default=True, type=click.IntRange(min=2),
                         help=products_help),
            click.option("--seed", default=0, show_default=True, type=int),
        ]):
            command = option(command)
        return command
    return decorate


@click.group(cls=boundary("dp-data"), context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Dataset manifests for DeepProduct: synthetic benchmark, real-data adapters, statistics."""


@main.command()
@_generator_options("synth.json", 400, "Train + test products (distractors come on top).")
@click.option("--test-fraction", default=0.3, show_default=True, type=click.FloatRange(0, 1, min_open=True,
                                                                                     max_open=True))
@click.option("--distractors", default=None, type=click.IntRange(min=0),
              help="Shop-only look-alike products added to the test gallery [default: as many as test products].")
@click.option("--image-size", default=288, show_default=True, type=click.IntRange(min=64),
              help="Image width in pixels (phone photos are 3:4 portrait).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (the output does not depend on it).")
def synth(out: Path, products: int, seed: int, test_fraction: float, distractors: int | None, image_size: int,
          workers: int) -> None:
    """Generate the embedded procedural product-search benchmark (deterministic by seed)."""
    from deepproduct.training.data.synth import generate_synthetic_dataset

    start = time.perf_counter()
    _claim_folder(out, [])
    try:
        path = generate_synthetic_dataset(out, n_products=products, seed=seed, test_fraction=test_fraction,
                                          n_distractors=distractors, image_size=image_size, workers=workers,
                                          progress=True)
    except FileExistsError as exc:
        raise OutputRefused(out, str(exc)) from exc
    _finish(path, start)


@main.command()
@_generator_options("transfer.json", 300, "At most this many products (fewer if the sources hold fewer).")
@click.option("--style", default="phone", show_default=True, type=click.Choice(["phone", "print-screen"]),
              help="phone: the product photographed where it lies; print-screen: the catalogue photo "
                   "photographed from a print or a screen (moire, glare, curvature).")
@click.option("--sources", "source_names", default=None,
              help="Comma-separated registered sources [default: every locked one], "
                   "e.g. skimage,sklearn,matplotlib,wallpapers,tuxpaint; '' for none (--source only).")
@click.option("--source", "folders", multiple=True, type=click.Path(path_type=Path),
              help="Extra folder of images (photos, or RGBA cut-outs); repeatable.")
@click.option("--image-size", default=512, show_default=True, type=click.IntRange(min=64),
              help="Image width in pixels (phone photos are 3:4 portrait).")
@click.option("--train-manifest", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check that the transfer set shares no product with this manifest's training split.")
@click.option("--allow-missing-sources", is_flag=True,
              help="Build without the locked source files this machine lacks or has in another version "
                   "(a smaller, different set; transfer.json records which) instead of refusing.")
@click.option("--lock", "lock", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Source lock to build from [default: training/data/transfer_sources.lock.json].")
def transfer(out: Path, products: int, seed: int, style: str, source_names: str | None, folders: tuple[Path, ...],
             image_size: int, train_manifest: Path | None, allow_missing_sources: bool, lock: Path | None) -> None:
    """Real-image consumer-to-shop transfer benchmark (test split only; docs/transfer-benchmark.md)."""
    from deepproduct.training.data.transfer import SourceSet, generate_transfer_dataset, manifest_digest
    from deepproduct.training.data.transfer_lock import LOCK_PATH

    start = time.perf_counter()
    _claim_folder(out, [train_manifest, lock, *folders])
    try:
        names = None if source_names is None else [n.strip() for n in source_names.split(",") if n.strip()]
        sources = SourceSet.resolve(names, folders, lock_path=lock or LOCK_PATH, n_products=products,
                                    allow_missing=allow_missing_sources)
        if sources.missing:
            click.echo(f"warning: built without {len(sources.missing)} locked source file(s) "
                       f"({sum(m.products for m in sources.missing)} candidate products); transfer.json lists them",
                       err=True)
        path = generate_transfer_dataset(out, n_products=products, seed=seed, sources=sources,
                                         image_size=image_size, train_manifest=train_manifest, progress=True,
                                         style=style)
    except FileExistsError as exc:
        raise OutputRefused(out, str(exc)) from exc
    _finish(path, start, f"manifest digest: {manifest_digest(path)} (style {style}; compare across machines)")


@main.command("transfer-lock")
@click.option("--lock", "out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Lock file to write or --check [default: the one in the package, "
                   "training/data/transfer_sources.lock.json].")
@click.option("--sources", "source_names", default=None,
              help="Comma-separated registered sources to lock [default: every installed one].")
@click.option("--check", is_flag=True, help="Only compare this machine's sources with the lock; exit 1 if they differ.")
def transfer_lock(out: Path | None, source_names: str | None, check: bool) -> None:
    """Pin the transfer benchmark's source files (path and sha256) in a lock file that dp-data transfer
    uses exactly; --check compares this machine's files with it."""
    from deepproduct.training.data.transfer import SourceSet, write_source_lock
    from deepproduct.training.data.transfer_lock import LOCK_PATH

    target = out or LOCK_PATH
    names = None if source_names is None else [n.strip() for n in source_names.split(",") if n.strip()]
    if check:
        sources = SourceSet.resolve(names, lock_path=target, n_products=300)  # refuses with the differences
        n_files = sum(len(f) for f in sources.files.values())
        click.echo(f"{target}: this machine has every locked file ({n_files} files, sources "
                   f"{', '.join(sorted(sources.files))})")
        return
    check_file_output(target, [], what="lock file (--lock)", kind="transfer-lock")
    doc = write_source_lock(target, names)
    per = ", ".join(f"{n} {len(e['files'])} files / {e['products']} products" for n, e in doc["sources"].items())
    click.echo(f"wrote {target}: {per}")


@main.command()
@click.argument("root", type=EXISTING_DIR)
@OUT_CSV
def sop(root: Path, out: Path) -> None:
    """Stanford Online Products (ROOT holds Ebay_train.txt and Ebay_test.txt)."""
    _run_adapter(_adapters().sop_to_manifest, root, out=out, inputs=[root])


@main.command()
@click.argument("root", type=EXISTING_DIR)
@OUT_CSV
def inshop(root: Path, out: Path) -> None:
    """DeepFashion In-shop (ROOT holds Eval/list_eval_partition.txt and Img/img/...)."""
    _run_adapter(_adapters().inshop_to_manifest, root, out=out, inputs=[root])


@main.command()
@click.argument("root", type=EXISTING_DIR)
@OUT_CSV
@click.option("--val", "val", default="gallery", show_default=True,
              type=click.Choice(["gallery", "test", "train", "drop"]),
              help="What to do with the val items: gallery = their shop images join the test gallery "
                   "(the published protocol).")
def consumer2shop(root: Path, out: Path, val: str) -> None:
    """DeepFashion Consumer-to-shop (ROOT holds Eval/list_eval_partition.txt and Img/img/...)."""
    _run_adapter(_adapters().consumer2shop_to_manifest, root, out=out, inputs=[root], val=val)


@main.command()
@click.argument("pairs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--images", "images", required=True, type=EXISTING_DIR, help="Folder the image names are relative to.")
@OUT_CSV
@click.option("--test-fraction", default=0.2, show_default=True, type=float,
              help="Used only when the pair list has no split column.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--template", default="{}", show_default=True,
              help="Turns an image reference into a file name, e.g. '{}.jpg' for numeric Street2Shop ids.")
def pairs(pairs_file: Path, images: Path, out: Path, test_fraction: float, seed: int, template: str) -> None:
    """Street2Shop-style pair list (JSON or CSV of street photo, shop photo, product id[, split])."""
    _run_adapter(_adapters().pairs_to_manifest, pairs_file, images, out=out, inputs=[pairs_file, images],
                 test_fraction=test_fraction, seed=seed, template=template)


@main.command()
@click.argument("root", type=EXISTING_DIR)
@OUT_CSV
@click.option("--test-fraction", default=0.2, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
def imagefolder(root: Path, out: Path, test_fraction: float, seed: int) -> None:
    """ROOT/<product_id>/*.jpg, or ROOT/<product_id>/{shop,user}/*.jpg; split by product."""
    _run_adapter(_adapters().imagefolder_to_manifest, root, out=out, inputs=[root], test_fraction=test_fraction,
                 seed=seed)


@main.command()
@click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top", default=12, show_default=True, help="Attribute values listed per attribute.")
def stats(csv_path: Path, top: int) -> None:
    """Products and images per split and domain, and attribute value counts."""
    m = read_dataset_manifest(csv_path)
    click.echo(f"{csv_path}: {len(m.rows)} images, {len(m.products())} products")
    click.echo(f"{'split':<6} {'domain':<6} {'products':>9} {'images':>8}")
    for split in SPLITS:
        for domain in DOMAINS:
            rows = m.select(split=split, domain=domain)
            click.echo(f"{split:<6} {domain:<6} {len({r.product_id for r in rows}):>9} {len(rows):>8}")
    test_shop_only = set(m.products("test")) - {r.product_id for r in m.select("test", "user")}
    if m.select("test", "user") and test_shop_only:
        click.echo(f"test products with shop images only (gallery distractors): {len(test_shop_only)}")
    tagged = sum(1 for r in m.rows if r.tags)
    click.echo(f"rows with tags: {tagged}")
    for name in m.attribute_names:
        # Counted per product (attributes describe products, not images).
        per_product = {r.product_id: r.attributes.get(name, "") for r in m.rows}
        counts = Counter(v or "(unknown)" for v in per_product.values())
        shown = ", ".join(f"{v} {c}" for v, c in counts.most_common(top))
        more = f", ... ({len(counts) - top} more values)" if len(counts) > top else ""
        click.echo(terminal_safe(f"attr {name} ({len(counts)} values, per product): {shown}{more}"))


#: The preview sheet's bounds: at most this many products (rows) and images per row, cells at most
#: this many pixels -- 64 x 16 cells of 512 px is a 400 MB canvas at worst, never gigabytes.
PREVIEW_MAX_PRODUCTS = 64
PREVIEW_MAX_PER_ROW = 16
PREVIEW_MAX_CELL = 512


@main.command()
@click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write.")
@click.option("--products", "n_products", default=6, show_default=True,
              type=click.IntRange(min=1, max=PREVIEW_MAX_PRODUCTS))
@click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS))
@click.option("--cell", default=192, show_default=True, type=click.IntRange(min=32, max=PREVIEW_MAX_CELL),
              help="Thumbnail size in px.")
def preview(csv_path: Path, out: Path, n_products: int, split: str, cell: int) -> None:
    """Contact sheet: one row per product, its shop images first, then its phone photos
    (at most 16 per row; unreadable images are grey cells, counted)."""
    import numpy as np
    from PIL import Image

    from deepproduct.sdk.preprocessing import ImageDecodeError, decode_image

    check_file_output(out, [csv_path], what="preview PNG (--out)", kind="png")
    m = read_dataset_manifest(csv_path)
    with_photos = sorted({r.product_id for r in m.select(split=split, domain="user")}) or m.products(split)
    chosen = with_photos[:n_products]
    if not chosen:
        raise DatasetManifestError(f"{csv_path}: no products in split {split!r}")
    by_product: dict[str, list] = {pid: [] for pid in chosen}
    for d in DOMAINS:
        for r in m.select(split=split, domain=d):
            if r.product_id in by_product and len(by_product[r.product_id]) < PREVIEW_MAX_PER_ROW:
                by_product[r.product_id].append(r)
    rows = [by_product[pid] for pid in chosen]
    width = max(len(r) for r in rows)
    sheet = Image.new("RGB", (width * cell, len(rows) * cell), "white")
    bad = 0
    for y, images in enumerate(rows):
        for x, row in enumerate(images):
            try:  # the SDK's decoder: regular files only (a FIFO never blocks), pixel cap, any mode
                rgb = decode_image(m.abspath(row))
            except ImageDecodeError:
                bad += 1
                sheet.paste((200, 200, 200), (x * cell, y * cell, (x + 1) * cell, (y + 1) * cell))
                continue
            if rgb.dtype != np.uint8:
                rgb = np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
            img = Image.fromarray(rgb)
            img.thumbnail((cell, cell))
            sheet.paste(img, (x * cell + (cell - img.width) // 2, y * cell + (cell - img.height) // 2))
    with atomic_path(out, mode=ordinary_file_mode()) as tmp:
        sheet.save(tmp, "PNG", pnginfo=png_info())
    note = f"; {bad} unreadable image(s) shown grey" if bad else ""
    click.echo(f"wrote {out}: {len(rows)} products of split {split} (shop images first, then phone photos){note}")


if __name__ == "__main__":
    main()
