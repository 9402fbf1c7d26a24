"""``export_report.md``: the parity table and the facts of one export, for humans and demo reports.

Written into the export folder (and hashed in the manifest like every file), so ``make demo`` can
paste it into the demo report as is.
"""

from __future__ import annotations


def _r(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def render(manifest: dict) -> str:
    m = manifest["model"]
    p = manifest["parity"]
    lines = [
        f"# dp-export: {m['name']} v{m['version']} ({m['backbone']}, {m['embedding_dim']}-d, "
        f"{m['input_size']}x{m['input_size']})",
        "",
        f"Embedding space `{manifest['embedding_space_id'][:16]}...`; parity on {p['images']} held-out images "
        f"({p.get('products')} products, {p.get('queries')} user-photo queries vs {p.get('gallery')} shop images) "
        f"from {p.get('source')}. Reference: PyTorch fp32, Recall@1 {_r(p.get('reference_recall_at_1'))}. "
        f"Verdict: **{'all thresholds met' if p['passed'] else 'FAILED'}**.",
        "",
        "| artefact | runtime | size | images | mean cosine | min cosine | threshold | Recall@1 (PyTorch) "
        "| drop (points) | ok |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for a in manifest["artefacts"]:
        for r in a["parity"]:
            drop = r.get("recall_drop_points")
            lines.append(f"| {a['file']} | {r['runtime']} | {a['size_bytes'] / 1e6:.2f} MB | {r.get('images')} | "
                         f"{r['cosine_mean']:.6f} | {r['cosine_min']:.6f} | {r['threshold']} | "
                         f"{_r(r.get('recall_at_1'))} ({_r(r.get('reference_recall_at_1'))}) | "
                         f"{'-' if drop is None else f'{drop:.1f}'} | {'yes' if r['passed'] else 'NO'} |")
    clients = [(a["file"], a["clients"]) for a in manifest["artefacts"] if a.get("clients")]
    if clients:
        lines += ["", "TFLite clients (cosine vs the ai-edge-litert interpreter at the input size; drift vs our "
                  "own preprocessing on whole photos, the client limited to our centre crop):", "",
                  "| file | client | version | at input size (mean / min) | drift, native photos | "
                  "drift, 512 px photos |", "| --- | --- | --- | --- | --- | --- |"]
        for file, c in clients:
            for name in ("task_library", "mediapipe"):
                e = c.get(name)
                if not e:
                    continue
                cells = [f"{e['input_size']['mean']:.6f} / {e['input_size']['min']:.6f}"]
                for key in ("drift_native", "drift_shorter_512px"):
                    d = e.get(key)
                    cells.append("-" if not d else f"{d['mean']:.4f} / {d['min']:.4f}")
                lines.append(f"| {file} | {name} | {e.get('version')} | " + " | ".join(cells) + " |")
    programs = [a for a in manifest["artefacts"] if a.get("delegation")]
    if programs:
        lines += ["", "ExecuTorch programs (every op inside a delegate, none on portable kernels):", ""]
        for a in programs:
            d = a["delegation"]
            calls = ", ".join(f"{n} x {b}" for b, n in sorted(d["backends"].items()))
            note = "" if a.get("runtime_check", "measured") == "measured" else f"; {a['runtime_check']}"
            lines.append(f"- {a['file']} ({a['size_bytes'] / 1e6:.2f} MB): {d['delegated_ops']} ops in {calls}{note}")
    if manifest.get("warnings"):
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in manifest["warnings"]]
    timings = manifest.get("timings_s") or {}
    if timings:
        lines += ["", f"Export stages took {sum(timings.values()):.0f} s in all:", ""]
        lines += [f"- {k}: {v:.1f} s" for k, v in timings.items()]
    return "\n".join(lines) + "\n"
