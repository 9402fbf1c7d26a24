"""``make demo``'s search stage check: SDK-path Recall@1 (exported ONNX + .dpindex) against the
training-side PyTorch evaluation of the same checkpoint.

The SDK and the trainer share one preprocessing function, so fp32 must agree within 0.5 point
and int8 index storage within 1 point of fp32 storage; a larger gap fails the demo (exit 1).
With ``--sdk-transfer`` (the SDK's evaluation of the real-image transfer set, docs/transfer-benchmark.md)
and ``--offtheshelf`` (the untrained backbone's ``eval.json``), a second table puts the shipped model
beside off-the-shelf pooled features on real photographs -- reported, not gated: the gap is a
property of the recipe, measured over seeds in docs/transfer-recipe.md, not of one demo run.
Run: ``python -m deepproduct.benchmarks.search_stage_report --training RUN/summary.json
--sdk-float32 f32.json --sdk-int8 i8.json [--sdk-transfer t.json --offtheshelf eval.json]
[--sdk-int8-model onnx=onnx-int8.json ...] --contact-sheet sheet.png --out report/30-search.md``.
``--sdk-int8-model`` rows (an index built and queried with an int8 artefact, as a phone would) are
reported beside the fp32 model; their gate is export's paired Recall@1 test (docs/export.md).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from deepproduct.sdk.fileio import write_text_atomic

FP32_TOLERANCE = 0.5  # points of Recall@1
INT8_TOLERANCE = 1.0


def _load(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def search_section(training: dict, sdk_f32: dict, sdk_i8: dict, sheet: str | None,
                   int8_models: dict[str, dict] | None = None) -> tuple[str, bool]:
    torch_r1 = 100 * training["final"]["recall@1"]
    f32_r1, i8_r1 = 100 * sdk_f32["recall@1"], 100 * sdk_i8["recall@1"]
    ok_f32 = abs(f32_r1 - torch_r1) <= FP32_TOLERANCE
    ok_i8 = abs(i8_r1 - f32_r1) <= INT8_TOLERANCE
    rows = [
        ("PyTorch evaluation (training side)", torch_r1, training["final"].get("recall@5"), "-", "reference"),
        ("SDK: ONNX fp32 model + float32 index", f32_r1, sdk_f32.get("recall@5"), f"{f32_r1 - torch_r1:+.2f}",
         "ok" if ok_f32 else f"FAIL (> {FP32_TOLERANCE})"),
        ("SDK: ONNX fp32 model + int8 index", i8_r1, sdk_i8.get("recall@5"), f"{i8_r1 - f32_r1:+.2f} vs float32",
         "ok" if ok_i8 else f"FAIL (> {INT8_TOLERANCE})"),
    ]
    for fmt, doc in (int8_models or {}).items():
        r1 = 100 * doc["recall@1"]
        rows.append((f"SDK: {fmt} int8 model (gallery and queries) + float32 index", r1, doc.get("recall@5"),
                     f"{r1 - f32_r1:+.2f} vs fp32 model", "reported (gated at export: paired test)"))
    lines = ["## Search through the SDK", "",
             "Gallery: held-out shop images (with distractors) indexed by `dp-search build`; queries: held-out "
             "phone photos through `dp-search evaluate` (the exported ONNX model, numpy exact search).", "",
             "| path | R@1 | R@5 | difference (points) | check |", "|---|---|---|---|---|"]
    for name, r1, r5, diff, check in rows:
        r5s = _r5(r5)
        lines.append(f"| {name} | {r1:.2f} | {r5s} | {diff} | {check} |")
    if sheet:
        lines += ["", f"![queries and their top-5 products]({sheet})", "",
                  "Each row: a phone photo, then its top-5 catalogue products (green = the right product)."]
    lines.append("")
    return "\n".join(lines), ok_f32 and ok_i8


def _interval(p1: float, n1: int, p2: float, n2: int) -> float:
    """Half-width (points) of a 95% normal interval of p1 - p2, as if the two were independent
    binomial proportions: conservative for two models scored on the same queries."""
    return 196 * math.sqrt(p1 * (1 - p1) / max(n1, 1) + p2 * (1 - p2) / max(n2, 1))


#: The two transfer styles (``dp-data transfer --style``): heading and how the queries were made.
TRANSFER_STYLES = {"phone": ("Real-image transfer through the SDK", "phone-style queries"),
                   "print-screen": ("Real-image transfer through the SDK: print-screen style",
                                    "print-screen-style queries (the catalogue photo re-photographed from a print "
                                    "or a screen)")}


def transfer_section(training: dict, sdk_transfer: dict, offtheshelf: dict, style: str = "phone",
                     base_prefix: str = "transfer/pooled/") -> str:
    """The real-image transfer table: off-the-shelf pooled features, the training-side figure and
    the shipped model through the SDK, with the gain over off-the-shelf and its interval.

    ``offtheshelf`` holds the reference under ``base_prefix`` + ``recall@K``: an off-the-shelf run
    scoring the set as its transfer set (``transfer/pooled/``) or as its own data (``""``)."""
    n = int(sdk_transfer.get("queries", 0))
    base = offtheshelf.get(f"{base_prefix}recall@1")
    sdk_r1 = sdk_transfer["recall@1"]
    torch_r1 = training.get("final", {}).get("transfer/recall@1")
    heading, words = TRANSFER_STYLES[style]
    lines = [f"## {heading}", "",
             f"The real-image transfer set (`dp-data transfer --style {style}`, docs/transfer-benchmark.md; {n} "
             f"{words} against {sdk_transfer.get('gallery', '?')} shop images, products never trained "
             "on), indexed and queried with the exported ONNX model like the catalogue above.", "",
             "| features | R@1 | R@5 | vs off-the-shelf (points, 95% interval) |", "|---|---|---|---|"]
    if base is not None:
        lines.append(f"| off-the-shelf pooled backbone (PyTorch, no training) | {100 * base:.2f} | "
                     f"{_r5(offtheshelf.get(f'{base_prefix}recall@5'))} | reference |")
    if torch_r1 is not None:
        lines.append(f"| shipped embedding, training-side evaluation | {100 * torch_r1:.2f} | "
                     f"{_r5(training['final'].get('transfer/recall@5'))} | - |")
    gain = (f"{100 * (sdk_r1 - base):+.1f} ± {_interval(sdk_r1, n, base, n):.1f}" if base is not None else "-")
    lines.append(f"| shipped embedding, SDK: ONNX fp32 + float32 index | {100 * sdk_r1:.2f} | "
                 f"{_r5(sdk_transfer.get('recall@5'))} | {gain} |")
    lines += ["", "One demo run is one seed; the recipe's three-seed figures are in docs/transfer-recipe.md.", ""]
    return "\n".join(lines)


def _r5(value: object) -> str:
    return f"{100 * value:.1f}" if isinstance(value, float) else "-"


@click.command()
@click.option("--training", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--sdk-float32", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--sdk-int8", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--sdk-transfer", default=None, type=click.Path(exists=True, dir_okay=False),
              help="dp-search evaluate --json of the real-image transfer set.")
@click.option("--offtheshelf", default=None, type=click.Path(exists=True, dir_okay=False),
              help="eval.json of the off-the-shelf run (its transfer/pooled figures).")
@click.option("--sdk-transfer-print", default=None, type=click.Path(exists=True, dir_okay=False),
              help="dp-search evaluate --json of the print-screen transfer set.")
@click.option("--offtheshelf-print", default=None, type=click.Path(exists=True, dir_okay=False),
              help="eval.json of the off-the-shelf run on the print-screen set (as its data.manifest).")
@click.option("--sdk-int8-model", "int8_models", multiple=True, metavar="FORMAT=FILE",
              help="dp-search evaluate --json of an index built and queried with an int8 artefact.")
@click.option("--contact-sheet", default=None, help="Contact sheet file name, relative to the report.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def main(training: str, sdk_float32: str, sdk_int8: str, sdk_transfer: str | None, offtheshelf: str | None,
         sdk_transfer_print: str | None, offtheshelf_print: str | None, int8_models: tuple[str, ...],
         contact_sheet: str | None, out: str) -> None:
    models = {}
    for item in int8_models:
        fmt, sep, path = item.partition("=")
        if not sep or not fmt or not Path(path).is_file():
            raise click.BadParameter(f"{item!r}: expected FORMAT=FILE with an existing file", param_hint="--sdk-int8-model")
        models[fmt] = _load(path)
    text, ok = search_section(_load(training), _load(sdk_float32), _load(sdk_int8), contact_sheet, models)
    if sdk_transfer:
        text += "\n" + transfer_section(_load(training), _load(sdk_transfer), _load(offtheshelf) if offtheshelf else {})
    if sdk_transfer_print:
        text += "\n" + transfer_section({}, _load(sdk_transfer_print),
                                        _load(offtheshelf_print) if offtheshelf_print else {}, "print-screen", "")
    write_text_atomic(out, text)
    click.echo(text)
    if not ok:
        click.echo("search stage: SDK Recall@1 disagrees with the training-side evaluation", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
