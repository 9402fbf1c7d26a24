"""``dp-search``: build, query, inspect and evaluate gallery indexes from the command line.

Every command goes through the same SDK objects an app backend would use (embedders,
GalleryIndex, ProductSearch), so what the CLI prints is what the SDK does. Errors that are
the user's input (a damaged index, a mismatched model, unreadable images) print one clear
message and exit with status 1 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .cli_boundary import boundary, terminal_safe
from .jsonio import dumps as json_dumps  # every --json output: RFC 8259, never NaN/Infinity
from .jsonio import loads as json_loads
from .output_policy import check_file_output, check_inputs
from .version import __version__


def parse_filters(specs: Sequence[str]) -> dict[str, Any] | None:
    """``field=value`` (a string) or ``field:=json`` (a number, bool, ...); repeating a field = any of."""
    out: dict[str, list[Any]] = {}
    for spec in specs:
        if ":=" in spec:
            name, raw = spec.split(":=", 1)
            try:
                value = json_loads(raw)  # the strict grammar: NaN, 1e400 are not values (docs/json.md)
            except ValueError as exc:
                raise click.BadParameter(f"{spec!r}: the value after := must be JSON") from exc
        elif "=" in spec:
            name, value = spec.split("=", 1)
        else:
            raise click.BadParameter(f"{spec!r}: expected field=value or field:=json")
        if not name:
            raise click.BadParameter(f"{spec!r}: empty field name")
        out.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()} or None


model_option = click.option("--model", "model", required=True, type=click.Path(exists=True, path_type=Path),
                            help="Exported model folder (manifest.json + artefacts) or one artefact file.")
format_option = click.option("--format", "fmt", default="onnx", show_default=True,
                             type=click.Choice(["onnx", "tflite", "executorch"]),
                             help="Which artefact runs the model (executorch: the .pte, needs the executorch extra).")
precision_option = click.option("--precision", default="fp32", show_default=True, help="Artefact precision.")
threads_option = click.option("--threads", type=click.IntRange(1, 256), default=None,
                              help="Model runtime threads (a huge value would hang the runtime's thread pool).")


@click.group(cls=boundary("dp-search"), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dp-search")
def main() -> None:
    """DeepProduct product search: gallery indexes through the exported model."""


@main.command()
@model_option
@click.option("--images", required=True, type=click.Path(exists=True, path_type=Path),
              help="Catalogue folder (one sub-folder per product) or dataset manifest .csv.")
@click.option("--split", default=None, type=click.Choice(["train", "test"]), help="Manifest rows of this split.")
@click.option("--domain", default=None, type=click.Choice(["shop", "user"]), help="Manifest rows of this domain.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Index file to write.")
@click.option("--storage", default="float32", show_default=True, type=click.Choice(["float32", "int8"]))
@click.option("--skip-bad", is_flag=True, help="Skip unreadable images (listed) instead of stopping.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@format_option
@precision_option
@threads_option
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="local: this process; ray: shards on a Ray Data actor pool, resumable (docs/distributed.md).")
@click.option("--address", default=None, help="Ray: 'auto' or HOST:PORT of a running cluster (default: a private "
                                             "local one).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Ray: shards and state, on storage every node sees (default: OUT.ray-work).")
@click.option("--resume", is_flag=True, default=None, help="Ray: continue the workdir; only unfinished shards run.")
@click.option("--shard-size", type=click.IntRange(1), default=None, help="Ray: images per shard [default: 1000].")
@click.option("--actors", type=click.IntRange(1), default=None, help="Ray: actor pool size [default: from the CPUs].")
@click.option("--threads-per-actor", type=click.IntRange(1), default=None, help="Ray: onnxruntime threads [default: 1].")
@click.option("--worker-retries", type=click.IntRange(0), default=None,
              help="Ray: restarts of a dead worker, its shard retried [default: 3].")
def build(model: Path, images: Path, split: str | None, domain: str | None, out: Path, storage: str,
          skip_bad: bool, batch_size: int, fmt: str, precision: str, threads: int | None, progress: bool,
          engine: str = "local", **ray_options: Any) -> None:
    """Embed a catalogue and write a .dpindex (atomically: an old OUT survives any failure)."""
    from .catalogue import catalogue_root, format_failures, list_catalogue
    from .distributed.build import check_engine_options
    from .embedders import load_embedder
    from .search import build_catalogue_index

    check_engine_options(engine, ray_options, threads)
    check_file_output(out, [images, model], what="index (--out)", kind="dpindex")  # before any work: never an input
    if engine == "ray":
        from .distributed.build import ray_build

        index, failures, _ = ray_build(model=model, images=images, split=split, domain=domain, storage=storage,
                                       skip_bad=skip_bad, batch_size=batch_size, fmt=fmt, precision=precision,
                                       progress=progress, out=out, **ray_options)
    else:
        entries = list_catalogue(images, split=split, domain=domain)
        embedder = load_embedder(model, format=fmt, precision=precision, threads=threads)
        info = {"source": str(images), "image_root": str(catalogue_root(images)), "split": split, "domain": domain}
        index, failures = build_catalogue_index(entries, embedder, storage=storage, skip_bad=skip_bad,
                                                batch_size=batch_size, progress=progress, info=info)
    if failures:
        click.echo(f"skipped {len(failures)} unreadable image(s):\n{format_failures(failures)}", err=True)
    index.save(out)
    products = len(set(index.product_ids))
    click.echo(f"wrote {terminal_safe(out)}: {len(index)} items, {products} products, {index.dim}-d {storage}, "
               f"embedding space {index.embedding_space_id}")


def trusted_image_root(info: dict[str, Any], index_path: Path) -> Path | None:
    """The gallery folder an index records, used for contact sheets only when it lies inside the
    current folder or the index's own folder: the index is untrusted, and a recorded root of ``/``
    would let it paste any image on this machine into a PNG the user then shares. Elsewhere the
    user passes ``--image-root`` (a one-line note says so)."""
    root = info.get("image_root")
    if not isinstance(root, str) or not root:
        return None
    resolved = Path(root).resolve()
    for base in (Path.cwd().resolve(), index_path.resolve().parent):
        if resolved == base or base in resolved.parents:
            return resolved
    click.echo(f"note: {index_path} records its images under {terminal_safe(root)}, outside this folder and the "
               "index's; pass --image-root to show them in the contact sheet", err=True)
    return None


def _hits_table(path: str, hits: list[Any]) -> str:
    lines = [terminal_safe(path), f"  {'rank':>4}  {'score':>7}  {'product':<20} {'category':<14} title"]
    for h in hits:  # ids and titles come from the index: shown escaped, never as terminal control codes
        meta = h.metadata
        lines.append(f"  {h.rank:>4}  {h.score:7.4f}  {terminal_safe(h.product_id):<20} "
                     f"{terminal_safe(meta.get('category', '')):<14} "
                     f"{terminal_safe(meta.get('title', meta.get('image', '')))}")
    if not hits:
        lines.append("  (no matching items)")
    return "\n".join(lines)


@main.command()
@click.option("--index", "index_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_option
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1), help="Results per image.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="Only items whose metadata FIELD equals VALUE (FIELD:=JSON for numbers); repeatable.")
@click.option("--products/--images", "unique_products", default=True, show_default=True,
              help="Results are distinct products (each with its best-matching image), or raw images "
                   "(a product with several images can then appear several times).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG: each photo next to its results.")
@click.option("--image-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gallery images are (default: recorded at build time).")
@format_option
@precision_option
@threads_option
def query(index_path: Path, model: Path, images: tuple[Path, ...], k: int, filters: tuple[str, ...],
          unique_products: bool, as_json: bool, contact_sheet: Path | None, image_root: Path | None, fmt: str, precision: str,
          threads: int | None) -> None:
    """Search the index with one or more photos."""
    from .search import ProductSearch

    if contact_sheet:
        check_file_output(contact_sheet, [index_path, model, image_root, *images], what="--contact-sheet",
                          kind="png")
    search = ProductSearch.open(model, index_path, format=fmt, precision=precision, threads=threads)
    if contact_sheet:
        check_file_output(contact_sheet, [search.index.info.get("image_root")], what="--contact-sheet")
    results = search.search_images(list(images), k=k, filter=parse_filters(filters), unique_products=unique_products)
    if contact_sheet:
        from .contact_sheet import write_contact_sheet

        write_contact_sheet(contact_sheet, list(images), results, image_root or trusted_image_root(search.index.info, index_path))
    if as_json:
        doc = [{"image": str(p), "results": [h.to_dict() for h in hits]}
               for p, hits in zip(images, results, strict=True)]
        click.echo(json_dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo("\n\n".join(_hits_table(str(p), hits) for p, hits in zip(images, results, strict=True)))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-verify", is_flag=True, help="Skip the whole-file checksum (huge files).")
def info(file: Path, as_json: bool, no_verify: bool) -> None:
    """Header, counts and checksum state of an index file (exit status 1 if it is damaged)."""
    from .gallery_index import GalleryIndex
    from .index_format import IndexFileError, check_finite, read_index_header, verify_checksum

    try:
        header = read_index_header(file)
    except IndexFileError as exc:
        raise click.ClickException(str(exc)) from exc
    checksum = "not checked"
    problem = None
    if not no_verify:
        try:
            verify_checksum(file, header)
            checksum = "ok"
        except IndexFileError as exc:
            checksum, problem = "BAD", str(exc)
    doc: dict[str, Any] = {
        "file": str(file), "format_version": header.format_version, "dim": header.dim,
        "storage": header.storage, "metric": header.metric, "count": header.count,
        "file_size": header.file_size, "checksum": checksum,
        "sections": {n: {"offset": s.offset, "length": s.length} for n, s in header.sections.items()},
    }
    if problem is None:
        try:
            index = GalleryIndex.load(file, verify=False)
            if not no_verify and index.storage == "float32":  # the value checks load runs: finite, unit rows
                check_finite(index.vectors, file)
            doc["embedding_space_id"] = index.embedding_space_id
            doc["products"] = len(set(index.product_ids))
            doc["index_info"] = index.info
            cats = Counter(str(m["category"]) for m in index.metadata if "category" in m)
            if cats:
                doc["categories"] = dict(sorted(cats.items()))
            if index.scales is not None:
                doc["int8_scales"] = {"min": float(index.scales.min()), "max": float(index.scales.max())}
        except IndexFileError as exc:
            problem = str(exc)
    if as_json:
        click.echo(json_dumps(doc, indent=2, ensure_ascii=False))
    else:
        for key, value in doc.items():
            if key == "sections":
                click.echo("sections:")
                for n, s in value.items():
                    click.echo(f"  {n:<11} offset {s['offset']:>12}  length {s['length']:>12}")
            else:
                click.echo(f"{key}: {terminal_safe(value)}")
    if problem:
        raise click.ClickException(problem)


@main.command()
@click.option("--index", "index_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_option
@click.option("--queries", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Dataset manifest .csv; its phone photos (domain user) are the queries.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "test"]))
@click.option("--domain", default="user", show_default=True, type=click.Choice(["shop", "user"]))
@click.option("-k", "ks", multiple=True, type=click.IntRange(1), default=(1, 5, 10), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG of the first --sheet-rows queries and their top 5.")
@click.option("--sheet-rows", default=12, show_default=True, type=click.IntRange(1))
@click.option("--image-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gallery images are (default: recorded at build time).")
@format_option
@precision_option
@threads_option
@click.option("--progress/--no-progress", default=True, show_default=True)
def evaluate(index_path: Path, model: Path, queries: Path, split: str, domain: str, ks: tuple[int, ...],
             as_json: bool, contact_sheet: Path | None, sheet_rows: int, image_root: Path | None, fmt: str,
             precision: str, threads: int | None, progress: bool) -> None:
    """Consumer-to-shop Recall@K of the index through the SDK path."""
    from .catalogue import format_failures, list_catalogue
    from .search import ProductSearch, recall_at_k

    if contact_sheet:
        check_file_output(contact_sheet, [index_path, model, queries, image_root], what="--contact-sheet",
                          kind="png")
    search = ProductSearch.open(model, index_path, format=fmt, precision=precision, threads=threads)
    if contact_sheet:
        check_file_output(contact_sheet, [search.index.info.get("image_root")], what="--contact-sheet")
    entries = list_catalogue(queries, split=split, domain=domain)
    report = search.embedder.embed_report([e.path for e in entries], progress=progress, desc="queries")
    if report.failures:
        click.echo(f"skipped {len(report.failures)} unreadable query image(s):\n"
                   f"{format_failures(report.failures)}", err=True)
    labels = [entries[i].product_id for i in report.ok_indices.tolist()]
    metrics = recall_at_k(search.index, report.embeddings, labels, ks)
    if metrics["queries"] == metrics["unmatched_queries"]:  # Recall@K would be 0/0: say so, never print NaN
        raise ValueError(f"{queries}: none of the {int(metrics['queries'])} readable query photo(s) has its "
                         f"product in {index_path}; Recall@K is undefined (wrong --split/--domain or index?)")
    metrics["storage"] = search.index.storage
    metrics["gallery"] = len(search.index)
    if contact_sheet and labels:
        from .contact_sheet import write_contact_sheet

        rows = min(sheet_rows, len(labels))
        hits = search.index.search(report.embeddings[:rows], k=5)
        paths = [entries[i].path for i in report.ok_indices[:rows].tolist()]
        write_contact_sheet(contact_sheet, paths, hits, image_root or trusted_image_root(search.index.info, index_path),
                            labels[:rows])
    if as_json:
        click.echo(json_dumps(metrics, indent=2))
    else:
        click.echo(f"consumer-to-shop on {index_path.name} ({search.index.storage}, {len(search.index)} items): "
                   f"{int(metrics['queries'])} queries, {int(metrics['unmatched_queries'])} without their "
                   "product in the gallery")
        click.echo("  Recall@K over images (any of the top K images is the product) / over distinct products:")
        for k in sorted(set(ks)):
            click.echo(f"  Recall@{k}: {100 * metrics[f'recall@{k}']:.2f} per image, "
                       f"{100 * metrics[f'product_recall@{k}']:.2f} over distinct products")


@main.command()
@model_option
@click.option("--index", "index_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", default="web", show_default=True, type=click.Choice(["web", "android", "ios"]),
              help="Which demo app (decides the model artefact copied).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Assets folder to (re)write, e.g. web_demo/bundle.")
@click.option("--precision", default="fp32", show_default=True, help="Artefact precision.")
@click.option("--runtime", default=None, type=click.Choice(["tflite", "executorch"]),
              help="Android only: ship the LiteRT .tflite (default) or the ExecuTorch .pte.")
@click.option("--sample", "sample_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A query photo to include; repeatable.")
@click.option("--samples-from", type=click.Path(exists=True, path_type=Path), default=None,
              help="Folder or dataset manifest .csv (its test phone photos) to take sample photos from.")
@click.option("--max-samples", default=8, show_default=True, type=click.IntRange(0))
@click.option("--thumbnail-size", default=96, show_default=True, type=click.IntRange(0, 512),
              help="Side of each product's catalogue thumbnail in the bundle (0: none).")
def bundle(model: Path, index_path: Path, target: str, out: Path, precision: str, runtime: str | None,
           sample_paths: tuple[Path, ...], samples_from: Path | None, max_samples: int, thumbnail_size: int) -> None:
    """Write model, manifest, index and sample photos into a demo app's assets (deepproduct.sdk.bundle)."""
    from .bundle import check_sample, write_bundle
    from .catalogue import catalogue_root, list_catalogue

    check_inputs(out, [model, index_path, samples_from, *sample_paths], "--out")
    from .bundle import check_replaceable

    check_replaceable(out)  # before any reading: a user's folder is refused at once
    samples: list[Path | tuple[Path, str]] = list(sample_paths)
    if samples_from is not None and max_samples:
        kw = {"split": "test", "domain": "user"} if samples_from.suffix.lower() == ".csv" else {}
        rows = list_catalogue(samples_from, **kw)[:max_samples]
        for e in rows:  # a manifest row must not pull a file from outside its data set into the app
            check_sample(e.path, catalogue_root(samples_from))
        samples += [(e.path, e.product_id) for e in rows]
    write_bundle(model, index_path, out, target, samples, precision, runtime=runtime, thumbnail_size=thumbnail_size)
    click.echo(f"{target} bundle with {len(samples)} sample photo(s) written to {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "parse_filters"]
