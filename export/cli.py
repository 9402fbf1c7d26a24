"""``dp-export``: the command line of the exporter.

    dp-export CHECKPOINT --out DIR [--formats onnx,tflite,coreml] [--quantize none,int8]
              [--calib FOLDER_OR_MANIFEST] [--parity FOLDER_OR_MANIFEST] [--image-size 224]
              [--calib-count N] [--calib-seed N] [--parity-images N]
    dp-export verify DIR [--images FOLDER_OR_MANIFEST] [--no-clients]

``dp-export CHECKPOINT ...`` is shorthand for ``dp-export export CHECKPOINT ...``: a click group
whose first argument is not a subcommand name is routed to ``export``, so the issue's one-line
form and a ``verify`` subcommand coexist. Progress goes to stderr, the summary table to stdout;
every error is one readable message and exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deepproduct.sdk.cli_boundary import boundary
from deepproduct.sdk.output_policy import MARKDOWN_MARKER, check_file_output

from .errors import ExportError, UsageError
from .variants import FORMATS, QUANTIZATIONS, parse_list


class _DefaultToExport(boundary("dp-export", known=(ExportError,))):
    """A group that treats ``dp-export CHECKPOINT ...`` as ``dp-export export CHECKPOINT ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        lead = [a for a in args if a == "--debug"]  # the boundary's group option may come first
        rest = [a for a in args if a != "--debug"] if lead else args
        if rest and rest[0] not in self.commands and not rest[0].startswith("-"):
            args = [*lead, "export", *rest]
        return super().parse_args(ctx, args)


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group(cls=_DefaultToExport, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Export a DeepProduct checkpoint to ONNX, TFLite and Core ML, and verify the artefacts.

    Run `dp-export CHECKPOINT --out DIR` (same as `dp-export export ...`) or `dp-export verify DIR`.
    """


@main.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder (must not exist).")
@click.option("--formats", default="onnx,tflite,coreml", show_default=True,
              help=f"Comma-separated: {', '.join(FORMATS)}.")
@click.option("--quantize", default="none,int8", show_default=True,
              help=f"Comma-separated: {', '.join(QUANTIZATIONS)} (see docs/export.md for the per-format meaning).")
@click.option("--calib", default=None, help="Calibration images: a dataset manifest.csv (its train split) or a "
              "folder; parity images are always excluded (default: the embedded benchmark's train split, "
              "generated with dp-data synth).")
@click.option("--parity", "parity_source", default=None, help="Held-out images for cosine and the Recall@1 gate: "
              "a manifest.csv (its test split) or a folder (default: --calib's test split when it is a "
              "manifest, else the embedded benchmark's).")
@click.option("--image-size", type=int, default=None, help="Input size S (default: the checkpoint's).")
@click.option("--calib-count", type=click.IntRange(1, 10000), default=64, show_default=True,
              help="Calibration images; fewer readable ones is an error.")
@click.option("--calib-seed", type=int, default=0, show_default=True, help="Seed of the calibration sample.")
@click.option("--parity-images", type=click.IntRange(2, 100000), default=None,
              help="Cap on the held-out images (whole products) for cosine and Recall@1 (default: the whole "
                   "held-out split); Core ML's numpy evaluator uses a 48-image subset of them.")
@click.option("--name", "model_name", default=None, help="Model name in the manifest (default: checkpoint name).")
@click.option("--model-version", default="1", show_default=True)
@click.option("--author", default="DeepProduct", show_default=True)
@click.option("--license", "license_", default="Apache-2.0", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder (atomically).")
@click.option("--no-clients", is_flag=True, help="Skip the MediaPipe / Task Library client checks.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the export report (markdown parity table) to this file.")
def export_cmd(checkpoint: Path, out: Path, formats: str, quantize: str, calib: str | None,
               parity_source: str | None, image_size: int | None, calib_count: int, calib_seed: int,
               parity_images: int | None, model_name: str | None,
               model_version: str, author: str, license_: str, overwrite: bool, no_clients: bool,
               report_path: Path | None) -> None:
    """Export CHECKPOINT (NAME.safetensors) into the folder --out."""
    from .workspace import check_export_folder

    check_export_folder(out.resolve(), checkpoint, calib, parity_source, overwrite)  # refused before torch loads
    from .pipeline import ExportOptions, export

    if report_path is not None:  # the output policy before any work: never the checkpoint or an input
        check_file_output(report_path, [checkpoint, out, calib, parity_source], what="--report", kind="markdown")
    try:
        opts = ExportOptions(
            checkpoint=checkpoint, out=out, formats=parse_list(formats, FORMATS, "format"),
            quantizations=parse_list(quantize, QUANTIZATIONS, "quantisation"), calib=calib,
            parity=parity_source, image_size=image_size, calib_count=calib_count, seed=calib_seed,
            parity_images=parity_images,
            model_name=model_name, model_version=model_version, author=author, license=license_,
            overwrite=overwrite, clients=not no_clients)
        result = export(opts, _say)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    if report_path is not None:
        from deepproduct.training.atomic import write_text_atomic

        from .pipeline import REPORT_FILE

        write_text_atomic(report_path, MARKDOWN_MARKER + "\n" + (result.out / REPORT_FILE).read_text(encoding="utf-8"))
    click.echo(result.table)
    click.echo("")
    click.echo(_artefact_table(result.manifest))
    click.echo(f"\nwrote {result.out} (manifest.json, {len(result.manifest['artefacts'])} artefacts); "
               f"total {sum(result.timings.values()):.0f} s")


@main.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--images", default=None, help="Verify on these images (folder or manifest.csv) instead of the "
              "saved parity set; the onnx/fp32 artefact is then the reference.")
@click.option("--no-clients", is_flag=True, help="Skip the MediaPipe / Task Library client checks.")
def verify_cmd(folder: Path, images: str | None, no_clients: bool) -> None:
    """Re-check FOLDER: schema, sha256 of every file, Core ML structure, parity by real runtimes."""
    from .verify import verify_folder

    image_set = None
    if images:
        import tempfile

        from .calibration import resolve_image_source

        image_set = resolve_image_source(images, Path(tempfile.gettempdir()))
    report, _ = verify_folder(folder, _say, image_set, clients=not no_clients)
    click.echo(report.table())
    if not report.passed:
        click.echo("\nFAILED:\n  " + "\n  ".join(report.failures()), err=True)
        sys.exit(1)
    click.echo(f"\n{folder}: all checks passed")


def _artefact_table(manifest: dict) -> str:
    rows = [("file", "format", "precision", "layout", "size", "cos mean", "R@1")]
    for a in manifest["artefacts"]:
        p = (a.get("parity") or [{}])[0]
        r1 = p.get("recall_at_1")
        rows.append((a["file"], a["format"], a["precision"], a["layout"], f"{a['size_bytes'] / 1e6:.2f} MB",
                     f"{p.get('cosine_mean', float('nan')):.6f}", "n/a" if r1 is None else f"{r1:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
