"""``README.md`` beside ``manifest.json``: a model card generated from the manifest, never by hand.

Hugging Face model-card convention: YAML front matter (``license``, ``tags``, ``pipeline_tag``,
``model-index`` with the measured results) followed by prose sections (intended use, input
contract and preprocessing, artefacts with their parity, limitations). Everything in it comes
from the manifest, so :func:`render` of the written manifest reproduces the file byte for byte:
``dp-export verify`` checks exactly that (:func:`card_problems`), and a hand edit is caught.

The card reads the manifest *without* its ``files`` listing (which lists the card itself), so
the card can be written first and then hashed into the manifest like every other file.

Results come from two manifest sections:

- ``evaluation``: the training run's own retrieval evaluation (``summary.json`` that ``dp-train``
  writes beside ``checkpoints/``), one entry per evaluation set -- the procedural benchmark's
  held-out split and, where the run measured it, the real-photo transfer set
  (:func:`evaluation_from_run` reads it; docs/manifest.md gives the shape);
- ``parity``: Recall@1 and cosine of every artefact on the export's held-out parity images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_FILENAME = "README.md"
TRANSFER_PREFIX = "transfer/"  # dp-train's transfer-set keys (training/eval/transfer.py)
METRIC_KEYS = ("recall@1", "recall@5", "recall@10", "recall@20", "map@r")
#: SPDX id -> the Hugging Face ``license`` value (lower-case SPDX; ``other`` when unknown).
HF_LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "cc-by-4.0", "cc-by-nc-4.0",
               "cc-by-sa-4.0", "gpl-3.0", "lgpl-3.0", "openrail", "unlicense"}
FORMAT_TAGS = {"onnx": "onnx", "tflite": "tflite", "coreml": "coreml", "executorch": "executorch",
               "executorch-coreml": "executorch"}


# --------------------------------------------------------------------------- evaluation section


def _metrics(record: dict) -> dict[str, float]:
    return {k: round(float(record[k]), 4) for k in METRIC_KEYS if isinstance(record.get(k), int | float)}


def evaluation_from_run(checkpoint: Path) -> dict[str, Any] | None:
    """The training run's evaluation for a ``.../checkpoints/last.safetensors`` checkpoint, or None.

    Only ``last`` is matched with ``summary.json`` (its ``final`` record is the last epoch's
    evaluation); another checkpoint has no recorded evaluation and gets none. Sets: the top-level
    metrics of ``final`` (the benchmark the run trained on, held-out test split) and every nested
    object of ``final`` with a ``recall@1`` (e.g. ``final["transfer"]``: the real-photo set).
    """
    checkpoint = Path(checkpoint)
    if checkpoint.name.removesuffix(".safetensors") != "last" or checkpoint.parent.name != "checkpoints":
        return None
    summary_path = checkpoint.parent.parent / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        final = summary["final"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    sets = []
    if _metrics(final):
        sets.append({"name": "training benchmark, held-out test split", "key": "test",
                     "protocol": final.get("protocol", "consumer-to-shop"), "queries": final.get("queries"),
                     "gallery": final.get("gallery"), "metrics": _metrics(final)})
    # dp-train's transfer evaluation writes flat keys (``transfer/recall@1``; the shipped head, not
    # ``transfer/pooled/...``): gather them into one set like a nested object.
    transfer = {k.removeprefix(TRANSFER_PREFIX): v for k, v in final.items()
                if k.startswith(TRANSFER_PREFIX) and "/" not in k.removeprefix(TRANSFER_PREFIX)}
    if _metrics(transfer) and "transfer" not in final:
        sets.append({"name": "real-image transfer set (dp-data transfer, never trained on)", "key": "transfer",
                     "protocol": final.get("protocol", "consumer-to-shop"), "queries": transfer.get("queries"),
                     "gallery": transfer.get("gallery"), "metrics": _metrics(transfer)})
    for key, value in final.items():
        if isinstance(value, dict) and _metrics(value):
            sets.append({"name": str(value.get("name") or key), "key": str(key),
                         "protocol": value.get("protocol", final.get("protocol", "consumer-to-shop")),
                         "queries": value.get("queries"), "gallery": value.get("gallery"),
                         "metrics": _metrics(value)})
    if not sets:
        return None
    return {"source": f"{summary_path.parent.name}/summary.json (dp-train, final epoch {final.get('epoch')}, "
                      f"step {final.get('step')})", "sets": sets}


# --------------------------------------------------------------------------- rendering


def _hf_license(spdx: str) -> str:
    low = (spdx or "").lower()
    return low if low in HF_LICENSES else "other"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100.0 * v:.1f}"


def _front_matter(m: dict) -> dict:
    model = m["model"]
    formats = [a["format"] for a in m["artefacts"]]
    tags = ["image-feature-extraction", "image-retrieval", "product-search", "deepproduct",
            str(model["backbone"]).replace("_", "-")]
    tags += [t for t in dict.fromkeys(FORMAT_TAGS.get(f, f) for f in formats) if t not in tags]
    if any(a["precision"] == "int8" for a in m["artefacts"]):
        tags.append("int8")
    results = []
    for s in (m.get("evaluation") or {}).get("sets", []):
        results.append({
            "task": {"type": "image-retrieval", "name": f"Product image retrieval ({s['protocol']})"},
            "dataset": {"name": s["name"], "type": s["key"]},
            "metrics": [{"type": k, "name": k.replace("recall@", "Recall@").replace("map@r", "MAP@R"),
                         "value": round(100.0 * v, 2)} for k, v in s["metrics"].items()]})
    p = m["parity"]
    for a in m["artefacts"]:
        for r in a.get("parity") or []:
            metrics = [{"type": "cosine_similarity", "name": "mean cosine vs PyTorch fp32",
                        "value": round(r["cosine_mean"], 6)}]
            if r.get("recall_at_1") is not None:
                metrics.append({"type": "recall@1", "name": "Recall@1", "value": round(100.0 * r["recall_at_1"], 2)})
            results.append({
                "task": {"type": "image-retrieval", "name": f"{a['file']} via {r['runtime']}"},
                "dataset": {"name": f"export parity set ({p['images']} held-out images)", "type": "parity"},
                "metrics": metrics})
    return {"license": _hf_license(model.get("license", "")), "library_name": "deepproduct",
            "pipeline_tag": "image-feature-extraction", "tags": tags,
            "model-index": [{"name": model["name"], "results": results}]}


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def render(manifest: dict) -> str:
    """The card for ``manifest`` (its ``files`` listing and artefact hashes are not read)."""
    m = manifest
    model, inp, pre, p = m["model"], m["input"], m["preprocessing"], m["parity"]
    size = inp["size"]
    lines = ["---", _yaml(_front_matter(m)).rstrip(), "---", "",
             f"# {model['name']} v{model['version']}", "",
             f"{model.get('description', '')}", "",
             "Generated by `dp-export` from `manifest.json` (do not edit: `dp-export verify` checks that this file "
             "is what the manifest renders to).", "",
             "## Intended use", "",
             "On-device product image search: embed a shopper's photo of a product and find the catalogue "
             "product by cosine similarity against a gallery of shop images embedded with **this** model "
             f"(embedding space `{m['embedding_space_id'][:16]}...`; a gallery from another model must not be "
             "mixed with it). Not for identifying people, not a classifier, not for safety decisions.", "",
             "## Input and preprocessing", "",
             f"- Input `{inp['name']}`: {inp['colour_order']} float32 in [{inp['value_range'][0]:g}, "
             f"{inp['value_range'][1]:g}], {size[0]}x{size[1]}; normalisation (mean "
             f"{[round(x, 4) for x in inp['normalisation']['mean']]}, std "
             f"{[round(x, 4) for x in inp['normalisation']['std']]}) is inside the graph.",
             f"- Output `{m['output']['name']}`: L2-normalised float32, {m['output']['dim']}-d.",
             "- Host preprocessing (`deepproduct.sdk.preprocessing`, docs/preprocessing.md): "
             + ", ".join(f"{k} {json.dumps(v)}" for k, v in pre.items()) + ".", "",
             "## Artefacts", "",
             "| file | format | precision | layout | size | parity (runtime: mean cosine, Recall@1) |",
             "| --- | --- | --- | --- | ---: | --- |"]
    for a in m["artefacts"]:
        runs = "; ".join(f"{r['runtime']}: {r['cosine_mean']:.6f}, {_pct(r.get('recall_at_1'))}"
                         for r in a.get("parity") or []) or (a.get("runtime_check") or "not measured")
        lines.append(f"| `{a['file']}` | {a['format']} | {a['precision']} | {a['layout']} | "
                     f"{a['size_bytes'] / 1e6:.2f} MB | {runs} |")
    lines += ["", "## Results", ""]
    ev = m.get("evaluation")
    if ev:
        lines += [f"Retrieval evaluation of the trained checkpoint, in percent (from {ev['source']}):", "",
                  "| set | protocol | queries | gallery | " + " | ".join(k for k in METRIC_KEYS) + " |",
                  "| --- | --- | ---: | ---: |" + " ---: |" * len(METRIC_KEYS)]
        for s in ev["sets"]:
            lines.append(f"| {s['name']} | {s['protocol']} | {s.get('queries')} | {s.get('gallery')} | "
                         + " | ".join(_pct(s["metrics"].get(k)) for k in METRIC_KEYS) + " |")
        lines.append("")
    else:
        lines += ["No training-run evaluation was recorded with this checkpoint (only `last` of a dp-train "
                  "run carries one); `dp-search evaluate` measures one.", ""]
    lines += [f"Export parity: {p['images']} held-out images from {p.get('source', 'n/a')} "
              f"({p.get('queries')} user-photo queries vs {p.get('gallery')} shop images); PyTorch fp32 "
              f"Recall@1 {_pct(p.get('reference_recall_at_1'))} on them. Verdict: "
              f"{'all thresholds met' if p.get('passed') else 'FAILED'}.", "",
              "## Limitations", "",
              "- What was measured is only what is listed above: the sets, their sizes and the runtimes named. "
              "Recall@1 on a few hundred queries moves by several points between samples (binomial standard "
              "error about 2-3 points at 300 queries); the int8 gate is a paired test on the same queries.",
              "- The training benchmark is procedural (`dp-data synth`); accuracy on a real catalogue is what "
              "the transfer set (where listed) indicates, not a guarantee.",
              "- Parity is measured on the host with each format's real runtime; phone runtimes (GPU, NPU, "
              "Core ML on the Neural Engine) compute in other precisions and can differ more.",
              ]
    if any(a.get("runtime_check", "measured") != "measured" for a in m["artefacts"]):
        lines.append("- Artefacts marked with a structural check only were not run here (see the table).")
    if m.get("warnings"):
        lines.append(f"- Export warnings: {len(m['warnings'])} (listed in manifest.json `warnings`).")
    lines += ["", "## Provenance", "",
              f"Backbone {model['backbone']} ({model.get('pretrained_source') or 'no pretrained source recorded'}), "
              f"architecture {model.get('architecture', 'embedding_net')}, pooling {model.get('pooling', 'avg')}. "
              f"Author {model.get('author', '')}; licence {model.get('license', '')}. Tools: "
              + ", ".join(f"{k} {v}" for k, v in sorted(m.get("tools", {}).items())) + "."]
    return "\n".join(lines) + "\n"


def write(folder: Path, manifest: dict) -> Path:
    """Render and write ``README.md`` (call before ``write_manifest``, so the card is hashed;
    artefact ``size_bytes`` must be filled already: the card shows them)."""
    path = folder / CARD_FILENAME
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(render(manifest), encoding="utf-8")
    tmp.replace(path)
    return path


def card_problems(folder: Path, manifest: dict) -> list[str]:
    """``dp-export verify``: the card must be what the manifest renders to (empty list: it is).

    A missing card that the manifest lists is reported by the hash check; an export made before
    cards existed lists none and has none."""
    path = Path(folder) / CARD_FILENAME
    if path.is_file() and path.read_text(encoding="utf-8") != render(manifest):
        return [f"{CARD_FILENAME} differs from what manifest.json renders to (hand-edited or stale); "
                "re-run dp-export"]
    return []
