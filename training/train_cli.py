"""``dp-train``: train, resume, or evaluate an embedding model from a YAML config."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click

from deepproduct.sdk.cli_boundary import BoundaryCommand, boundary
from deepproduct.sdk.locking import folder_lock
from deepproduct.sdk.output_policy import (
    OutputRefused,
    check_folder_output,
    check_inputs,
    is_marked,
    read_marker,
    write_marker,
)

from .config import load_config


@click.command(cls=boundary("dp-train", known=(KeyError,), known_exit_code=2, cls=BoundaryCommand),
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML config (defaults apply to every key it leaves out).")
@click.option("--resume", type=click.Path(), default=None,
              help="Checkpoint to resume from (e.g. RUN/checkpoints/last.safetensors).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing run folder of the same name (only one dp-train wrote).")
@click.option("--eval-only", is_flag=True, help="Only evaluate (the pretrained start, or --checkpoint).")
@click.option("--off-the-shelf", is_flag=True,
              help="With --eval-only: score the backbone's pooled pretrained features (no head).")
@click.option("--checkpoint", type=click.Path(), default=None,
              help="With --eval-only: weights to evaluate (the model's shape is taken from it).")
@click.option("--refit-head", is_flag=True,
              help="With --eval-only --checkpoint: re-fit the PCA head at data.ship_size (else data.image_size; "
                   "FixRes after the fact) and save the result as a new run's checkpoints/last.safetensors.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.argument("overrides", nargs=-1)
def main(config_path: str | None, resume: str | None, overwrite: bool, eval_only: bool, off_the_shelf: bool,
         checkpoint: str | None, refit_head: bool, quiet: bool, overrides: tuple[str, ...]) -> None:
    """Fine-tune a product-search embedding. OVERRIDES are section.key=value pairs,
    e.g. optim.epochs=3 model.backbone=mobilenetv3_small losses.0.name=contrastive.

    An existing run folder (OUT_DIR/NAME) is never trained over silently: pass --resume to
    continue it or --overwrite to replace it (docs/threat-model.md, output policy)."""
    cfg = load_config(config_path, overrides)
    run_dir = Path(cfg.out_dir) / cfg.name
    inputs = [config_path, cfg.data.manifest, cfg.eval.transfer_manifest, checkpoint, resume]
    if refit_head and not (eval_only and checkpoint):
        raise click.UsageError("--refit-head goes with --eval-only --checkpoint CKPT")
    if refit_head:  # writes a checkpoint: the same output policy as a training run
        check_folder_output(run_dir, inputs, overwrite=overwrite, what=f"run folder {cfg.name!r}", kind="run-folder")
    elif eval_only:
        check_inputs(run_dir, inputs, "run folder")  # eval-only writes eval.json only
    elif resume:
        check_inputs(run_dir, [config_path, cfg.data.manifest, cfg.eval.transfer_manifest], "run folder")
        _check_resume_target(run_dir, Path(resume))
    elif os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 owns the run folder; the others would race it
        check_folder_output(run_dir, inputs, overwrite=overwrite, what=f"run folder {cfg.name!r}", kind="run-folder")
    from .trainer import Trainer

    trainer = Trainer(cfg, progress=not quiet, eval_only=eval_only)
    try:
        if eval_only:
            if checkpoint:
                from .checkpoint import load_model

                model, model_cfg = load_model(checkpoint)  # its own shape: a 256-d checkpoint with a 128-d config works
                model.input_size = trainer.eval_size  # data.ship_size, else data.image_size
                trainer.model = model.to(trainer.device)
            out = trainer.out_dir
            refit: dict[str, str] = {}
            if refit_head:
                _claim_run_folder(run_dir, clear=overwrite)
                trainer.refit_head(trained_size=model_cfg.get("trained_input_size") or model_cfg.get("input_size"))
                refit = {"refit_checkpoint": str(trainer.save_model())}
            metrics = trainer.evaluate(off_the_shelf=off_the_shelf)
            out.mkdir(parents=True, exist_ok=True)
            if not is_marked(out):
                write_marker(out, "dp-train", "run-folder")
            from .atomic import write_text_atomic

            record = {"type": "eval", "off_the_shelf": off_the_shelf, "checkpoint": checkpoint, **refit, **metrics}
            write_text_atomic(out / "eval.json", json.dumps(record, indent=2, allow_nan=False))
            click.echo(json.dumps(record, indent=2, allow_nan=False))
            return
        if resume:
            trainer.resume(resume)
        if trainer.dist.is_main:
            _claim_run_folder(run_dir, clear=overwrite and not resume)
        result = trainer.train()
        if trainer.dist.is_main:
            click.echo(json.dumps({"out_dir": str(result.out_dir), "final": result.final_metrics,
                                   "images_per_s": round(result.images_per_s, 2),
                                   "multitask_variant": result.multitask_variant}, indent=2, allow_nan=False))
    finally:
        trainer.close()


def _check_resume_target(run_dir: Path, checkpoint: Path) -> None:
    """``--resume`` continues a run: into a missing or empty folder, or into dp-train's own run folder
    that holds the checkpoint being resumed -- never a user's folder, never another run's."""
    if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        return
    marker = read_marker(run_dir) or {}
    if not run_dir.is_dir() or marker.get("kind") != "run-folder":
        raise OutputRefused(run_dir, "--resume would write into a folder dp-train did not write; "
                                     "choose another name= or out_dir=")
    if run_dir.resolve() not in checkpoint.resolve().parents:
        raise OutputRefused(run_dir, f"--resume {checkpoint} belongs to another run than this run folder; "
                                     "pass the name= of the run it came from (or a new one)")


def _claim_run_folder(run_dir: Path, clear: bool) -> None:
    """Take ``run_dir`` for this command (training, or a --refit-head that writes a checkpoint):
    emptied first when ``clear`` (--overwrite) and dp-train marked it, created, locked -- one
    dp-train per run folder, so a second one with the same name fails at once instead of
    interleaving checkpoints and metrics (released when the command ends) -- and marked ours."""
    if clear and run_dir.is_dir() and is_marked(run_dir):
        _clear_run_folder(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    click.get_current_context().with_resource(folder_lock(run_dir, run_dir, ValueError))
    write_marker(run_dir, "dp-train", "run-folder")


def _clear_run_folder(run_dir: Path) -> None:
    """``--overwrite``: empty a run folder that dp-train marked as its own (checked by the caller)."""
    for child in run_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


if __name__ == "__main__":
    main()
