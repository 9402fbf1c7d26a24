"""``dp-train``: train, resume, or evaluate an embedding model from a YAML config."""

from __future__ import annotations

import json
import sys

import click

from .config import ConfigError, load_config


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML config (defaults apply to every key it leaves out).")
@click.option("--resume", type=click.Path(), default=None,
              help="Checkpoint to resume from (e.g. RUN/checkpoints/last.safetensors).")
@click.option("--eval-only", is_flag=True, help="Only evaluate (the pretrained start, or --checkpoint).")
@click.option("--off-the-shelf", is_flag=True,
              help="With --eval-only: score the backbone's pooled pretrained features (no head).")
@click.option("--checkpoint", type=click.Path(), default=None, help="With --eval-only: weights to evaluate.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.argument("overrides", nargs=-1)
def main(config_path: str | None, resume: str | None, eval_only: bool, off_the_shelf: bool,
         checkpoint: str | None, quiet: bool, overrides: tuple[str, ...]) -> None:
    """Fine-tune a product-search embedding. OVERRIDES are section.key=value pairs,
    e.g. optim.epochs=3 model.backbone=mobilenetv3_small losses.0.name=contrastive."""
    from .checkpoint import CheckpointError
    from .data.product_dataset import DataError

    try:
        cfg = load_config(config_path, overrides)
        from .trainer import Trainer

        trainer = Trainer(cfg, progress=not quiet, eval_only=eval_only)
        try:
            if eval_only:
                if checkpoint:
                    from .checkpoint import load_model

                    model, _ = load_model(checkpoint)
                    trainer.model.load_state_dict(model.state_dict())
                metrics = trainer.evaluate(off_the_shelf=off_the_shelf)
                out = trainer.out_dir
                out.mkdir(parents=True, exist_ok=True)
                from .atomic import write_text_atomic

                record = {"type": "eval", "off_the_shelf": off_the_shelf, "checkpoint": checkpoint, **metrics}
                write_text_atomic(out / "eval.json", json.dumps(record, indent=2))
                click.echo(json.dumps(record, indent=2))
                return
            if resume:
                trainer.resume(resume)
            result = trainer.train()
            if trainer.dist.is_main:
                click.echo(json.dumps({"out_dir": str(result.out_dir), "final": result.final_metrics,
                                       "images_per_s": round(result.images_per_s, 2),
                                       "multitask_variant": result.multitask_variant}, indent=2))
        finally:
            trainer.close()
    except (ConfigError, DataError, CheckpointError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        click.echo(f"dp-train: error: {message}", err=True)
        sys.exit(2)




if __name__ == "__main__":
    main()
