"""The demo report's training section: a table of methods and plots of curves and Recall@K.

Run as ``python -m deepproduct.training.eval.report --out runs/demo/report/10-training.md
--baseline runs/demo/offtheshelf/eval.json --run "classical contrastive=runs/demo/contrastive" ...``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deepproduct.sdk.fileio import save_figure

from ..atomic import write_text_atomic
from ..config import load_yaml_text

KS = (1, 5, 10, 20)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_run(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    log = read_jsonl(run_dir / "metrics.jsonl")

    cfg = load_yaml_text((run_dir / "config.yaml").read_text(encoding="utf-8"), str(run_dir / "config.yaml"))
    return {"dir": run_dir, "summary": summary, "log": log, "config": cfg}


def shipped_dim(cfg: dict[str, Any]) -> str:
    """The embedding size the run ships (a PCA projection may widen the trained head)."""
    head = cfg.get("head") or {}
    trained = cfg["model"]["embedding_dim"]
    if head.get("projection", "none") != "none" and head.get("projection_dim") not in (None, trained):
        return f"{head['projection_dim']}, PCA head; trained with {trained}"
    return str(trained)


def trained_head_eval(run: dict[str, Any]) -> dict[str, Any] | None:
    """The last per-epoch evaluation before a post-training head projection, if the run had one."""
    evals = [r for r in run["log"] if r["type"] == "eval"]
    if not evals or evals[-1].get("stage") != "projection":
        return None
    before = [r for r in evals if r.get("stage") != "projection"]
    return before[-1] if before else None


def plot_curves(runs: dict[str, dict], baseline: dict[str, Any] | None, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    transfer = any(TRANSFER_KEY in r for run in runs.values() for r in run["log"])
    fig, axes = plt.subplots(1, 4 if transfer else 3, figsize=(20 if transfer else 15, 4.2))
    for label, run in runs.items():
        train = [r for r in run["log"] if r["type"] == "train"]
        evals = [r for r in run["log"] if r["type"] == "eval" and r.get("stage") != "projection"]
        axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label=label)
        axes[1].plot([r["epoch"] for r in evals], [100 * r["recall@1"] for r in evals], marker="o", label=label)
    if baseline:
        axes[1].axhline(100 * baseline["recall@1"], color="grey", ls="--", label="off-the-shelf")
    axes[0].set(title="training loss (total)", xlabel="step", ylabel="loss")
    axes[1].set(title="held-out Recall@1 per epoch", xlabel="epoch", ylabel="Recall@1 (%)")
    methods = ({"off-the-shelf": baseline} if baseline else {}) | {k: v["summary"]["final"] for k, v in runs.items()}
    width = 0.8 / max(1, len(methods))
    for i, (label, m) in enumerate(methods.items()):
        axes[2].bar([j + i * width for j in range(len(KS))], [100 * m[f"recall@{k}"] for k in KS], width,
                    label=label)
    axes[2].set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(KS))], [f"R@{k}" for k in KS])
    axes[2].set(title="held-out Recall@K", ylabel="%")
    if transfer:
        plot_transfer_curves(axes[3], runs, baseline)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_png, dpi=110)
    plt.close(fig)


TRANSFER_KEY, TRANSFER_POOLED_KEY = "transfer/recall@1", "transfer/pooled/recall@1"


def transfer_curve(run: dict[str, Any], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one transfer metric: the start record (epoch 0) and every epoch's eval."""
    recs = [r for r in run["log"] if key in r and (r["type"] == "transfer" or
                                                    (r["type"] == "eval" and r.get("stage") != "projection"))]
    return [r["epoch"] for r in recs], [r[key] for r in recs]


def plot_transfer_curves(ax: Any, runs: dict[str, dict], baseline: dict[str, Any] | None) -> None:
    """Transfer-set Recall@1 per epoch: the embedding (solid) and the pooled backbone (dashed) of each
    run, so a collapsing head or a forgetting backbone shows while it happens."""
    for label, run in runs.items():
        epochs, head = transfer_curve(run, TRANSFER_KEY)
        line = ax.plot(epochs, [100 * v for v in head], marker="o", label=f"{label}: embedding")[0]
        epochs, pooled = transfer_curve(run, TRANSFER_POOLED_KEY)
        ax.plot(epochs, [100 * v for v in pooled], ls="--", marker=".", color=line.get_color(),
                label=f"{label}: pooled backbone")
    if baseline and TRANSFER_POOLED_KEY in baseline:
        ax.axhline(100 * baseline[TRANSFER_POOLED_KEY], color="grey", ls=":", label="off-the-shelf pooled")
    ax.set(title="transfer set (real images) Recall@1 per epoch", xlabel="epoch (0 = before training)",
           ylabel="Recall@1 (%)")


def transfer_table(runs: dict[str, dict], baseline: dict[str, Any] | None) -> list[str]:
    """Markdown lines: transfer-set Recall@1 at the start and at the end, embedding and pooled ([] if
    no run scored a transfer set)."""
    scored = {k: v for k, v in runs.items() if TRANSFER_KEY in v["summary"]["final"]}
    if not scored:
        return []
    first = next(iter(scored.values()))["summary"]["final"]

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    lines = ["", f"Transfer set (real images, `eval.transfer_manifest`; {first.get('transfer/queries', '?')} "
             f"phone-style queries, {first.get('transfer/gallery', '?')} shop images), Recall@1:", "",
             "| method | embedding, start | embedding, final | pooled backbone, start | pooled backbone, final |",
             "|---|---|---|---|---|"]
    if baseline and TRANSFER_POOLED_KEY in baseline:
        lines.append(f"| off-the-shelf pretrained (pooled features) | - | - | - | {pct(baseline[TRANSFER_POOLED_KEY])} |")
    for label, run in scored.items():
        final = run["summary"]["final"]
        start = next((r for r in run["log"] if r["type"] == "transfer"), {})
        lines.append(f"| {label} | {pct(start.get(TRANSFER_KEY))} | {pct(final.get(TRANSFER_KEY))} | "
                     f"{pct(start.get(TRANSFER_POOLED_KEY))} | {pct(final.get(TRANSFER_POOLED_KEY))} |")
    return lines


def training_section(runs: dict[str, dict], baseline: dict[str, Any] | None, plot_name: str) -> str:
    lines = ["## Training: off-the-shelf vs fine-tuned", ""]
    first = next(iter(runs.values()), None)
    if first:
        cfg = first["config"]
        lines += [f"Data: `{cfg['data']['manifest']}`, image size {cfg['data']['image_size']}, "
                  f"backbone `{cfg['model']['backbone']}` (D={shipped_dim(cfg)}), seed {cfg['seed']}, "
                  f"{cfg['optim']['epochs']} epochs, P x K = {cfg['data']['products_per_batch']} x "
                  f"{cfg['data']['images_per_product']}, same budget for every fine-tuned row.", ""]
    header = "| method | multitask variant | " + " | ".join(f"R@{k}" for k in KS) + " | MAP@R | steps | img/s | train s |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    if baseline:
        lines.append("| off-the-shelf pretrained (pooled features) | - | "
                     + " | ".join(f"{100 * baseline[f'recall@{k}']:.1f}" for k in KS)
                     + f" | {100 * baseline['map@r']:.1f} | 0 | - | - |")
    for label, run in runs.items():
        s, m = run["summary"], run["summary"]["final"]
        trained = trained_head_eval(run)
        if trained is not None:  # the head as trained, before the PCA projection replaced it
            lines.append(f"| {label}: its trained head, before the PCA projection | {s['multitask_variant']} | "
                         + " | ".join(f"{100 * trained[f'recall@{k}']:.1f}" for k in KS)
                         + f" | {100 * trained['map@r']:.1f} | {s['steps']} | - | - |")
        lines.append(f"| {label} | {s['multitask_variant']} | " + " | ".join(f"{100 * m[f'recall@{k}']:.1f}" for k in KS)
                     + f" | {100 * m['map@r']:.1f} | {s['steps']} | {s['images_per_s']:.1f} | {s['train_seconds']:.0f} |")
    if baseline and runs:
        best_label, best = max(runs.items(), key=lambda kv: kv[1]["summary"]["final"]["recall@1"])
        gain = 100 * (best["summary"]["final"]["recall@1"] - baseline["recall@1"])
        lines += ["", f"Best fine-tuned ({best_label}) vs off-the-shelf: **{gain:+.1f} points Recall@1** "
                      f"on held-out products ({baseline.get('queries', '?')} phone-photo queries, "
                      f"{baseline.get('gallery', '?')} shop images in the gallery)."]
    lines += transfer_table(runs, baseline)
    variants = {run["summary"]["multitask_variant"] for run in runs.values()}
    if "distillation" in variants:
        lines += ["", "Multitask regularisation ran as **distillation to a frozen pretrained teacher** "
                      "(docs/method.md section 3: no ImageNet folder was given); the paper's variant mixes real "
                      "ImageNet images into every step (`data.imagenet_folder=...`)."]
    if "imagenet" in variants:
        lines += ["", "Multitask regularisation ran with **real ImageNet-format images** mixed into every step."]
    lines += ["", f"![training curves and Recall@K]({plot_name})", ""]
    return "\n".join(lines)


@click.command()
@click.option("--out", "out_md", type=click.Path(dir_okay=False), required=True)
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False), default=None,
              help="eval.json of the off-the-shelf evaluation.")
@click.option("--run", "run_specs", multiple=True, help="LABEL=RUN_DIR, in table order.")
def main(out_md: str, baseline: str | None, run_specs: tuple[str, ...]) -> None:
    runs = {}
    for spec in run_specs:
        label, _, path = spec.partition("=")
        runs[label] = load_run(Path(path))
    base = json.loads(Path(baseline).read_text(encoding="utf-8")) if baseline else None
    out = Path(out_md)
    plot_name = out.with_suffix(".png").name
    plot_curves(runs, base, out.with_suffix(".png"))
    write_text_atomic(out, training_section(runs, base, plot_name))
    click.echo(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
