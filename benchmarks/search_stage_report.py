"""``make demo``'s search stage check: SDK-path Recall@1 (exported ONNX + .dpindex) against the
training-side PyTorch evaluation of the same checkpoint.

The SDK and the trainer share one preprocessing function, so fp32 must agree within 0.5 point
and int8 index storage within 1 point of fp32 storage; a larger gap fails the demo (exit 1).
Run: ``python -m deepproduct.benchmarks.search_stage_report --training RUN/summary.json
--sdk-float32 f32.json --sdk-int8 i8.json --contact-sheet sheet.png --out report/30-search.md``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

FP32_TOLERANCE = 0.5  # points of Recall@1
INT8_TOLERANCE = 1.0


def _load(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def search_section(training: dict, sdk_f32: dict, sdk_i8: dict, sheet: str | None) -> tuple[str, bool]:
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
    lines = ["## Search through the SDK", "",
             "Gallery: held-out shop images (with distractors) indexed by `dp-search build`; queries: held-out "
             "phone photos through `dp-search evaluate` (the exported ONNX model, numpy exact search).", "",
             "| path | R@1 | R@5 | difference (points) | check |", "|---|---|---|---|---|"]
    for name, r1, r5, diff, check in rows:
        r5s = f"{100 * r5:.1f}" if isinstance(r5, float) else "-"
        lines.append(f"| {name} | {r1:.2f} | {r5s} | {diff} | {check} |")
    if sheet:
        lines += ["", f"![queries and their top-5 products]({sheet})", "",
                  "Each row: a phone photo, then its top-5 catalogue products (green = the right product)."]
    lines.append("")
    return "\n".join(lines), ok_f32 and ok_i8


@click.command()
@click.option("--training", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--sdk-float32", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--sdk-int8", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--contact-sheet", default=None, help="Contact sheet file name, relative to the report.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def main(training: str, sdk_float32: str, sdk_int8: str, contact_sheet: str | None, out: str) -> None:
    text, ok = search_section(_load(training), _load(sdk_float32), _load(sdk_int8), contact_sheet)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out_path)
    click.echo(text)
    if not ok:
        click.echo("search stage: SDK Recall@1 disagrees with the training-side evaluation", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
