"""``dp-search build --engine ray``: check, plan, embed the missing shards on Ray, merge, summarise.

Why this order: every refusal that costs nothing comes before anything that costs something --
the workdir's policy, Ray's presence and the cluster's address (seconds) before listing the
catalogue and hashing it; the workdir's identity and every committed shard's checksum before a
single actor starts. A refusal writes nothing outside the workdir (and nothing in it either,
except for a new workdir's marker and state once all checks have passed).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..catalogue import catalogue_root, list_catalogue
from ..embedders import load_embedder
from ..gallery_index import GalleryIndex
from ..locking import folder_lock
from ..model_manifest import sha256_file
from . import DistributedError
from .merge import merge_index
from .plan import DEFAULT_SHARD_SIZE, check_workdir, committed_shards, make_plan, open_workdir, read_done

#: Options of ``build`` that only the Ray engine reads (given with ``--engine local``: a usage error).
RAY_ONLY_OPTIONS = ("address", "workdir", "resume", "shard_size", "actors", "threads_per_actor", "worker_retries")


def default_workdir(out: Path) -> Path:
    """``catalogue.dpindex`` -> ``catalogue.dpindex.ray-work`` beside it: the same command finds it again."""
    return out.with_name(out.name + ".ray-work")


def check_engine_options(engine: str, given: dict[str, Any], threads: int | None = None) -> None:
    """Options of the other engine are a mistake worth saying, not ignoring."""
    if engine == "ray" and threads is not None:
        raise click.UsageError("--threads sets the local engine's threads; with --engine ray use --threads-per-actor")
    if engine != "ray":
        used = [f"--{k.replace('_', '-')}" for k in RAY_ONLY_OPTIONS if given.get(k) not in (None, False)]
        if used:
            raise click.UsageError(f"{', '.join(used)} only apply with --engine ray")


@dataclass
class RayBuildStats:
    """What the summary line says, for the benchmark too."""

    images: int = 0
    bad: int = 0
    shards: int = 0
    shards_embedded: int = 0
    shards_reused: int = 0
    images_embedded: int = 0
    actors: int = 0
    wall_s: float = 0.0
    ray_s: float = 0.0
    nodes: set[str] = field(default_factory=set)
    #: (node id, pid) -> [images, seconds] of each actor this run.
    per_actor: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    embedded_ids: list[int] = field(default_factory=list)

    @property
    def images_per_s_per_actor(self) -> float | None:
        rates = [n / s for n, s in self.per_actor.values() if s > 0]
        return sum(rates) / len(rates) if rates else None

    @property
    def images_per_s(self) -> float | None:
        return self.images_embedded / self.ray_s if self.ray_s > 0 and self.images_embedded else None

    def summary(self, workdir: Path) -> str:
        per_actor = self.images_per_s_per_actor
        rate = (f"{per_actor:.1f} images/s per actor ({len(self.per_actor)} actor(s) on {len(self.nodes)} node(s))"
                if per_actor is not None else "no shard embedded this run")
        return (f"ray build: {self.images} images, {self.bad} bad, {self.shards} shards: {self.shards_embedded} "
                f"embedded, {self.shards_reused} reused from {workdir}; {self.wall_s:.1f} s wall; {rate}")


class _Progress:
    """images/s and ETA on a terminal (tqdm), nothing elsewhere: the summary says the rest."""

    def __init__(self, total: int, shards: int, enabled: bool) -> None:
        self.bar = None
        self.shards = shards
        self.done = 0
        if enabled and total and getattr(sys.stderr, "isatty", lambda: False)():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="ray build", unit="img", leave=False)

    def update(self, images: int) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(images)
            self.bar.set_postfix_str(f"shards {self.done}/{self.shards}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def ray_build(*, model: Path, images: Path, split: str | None, domain: str | None, storage: str, skip_bad: bool,
              batch_size: int, fmt: str, precision: str, progress: bool, out: Path, address: str | None,
              workdir: Path | None, resume: bool, shard_size: int | None, actors: int | None,
              threads_per_actor: int | None, worker_retries: int | None,
              shard_hook: Callable[[int], None] | None = None, echo: Callable[[str], None] = click.echo,
              ) -> tuple[GalleryIndex, list[tuple[str, str]], RayBuildStats]:
    """The whole Ray build; returns what ``build_catalogue_index`` returns, plus the run's figures."""
    from .ray_engine import import_ray, pool_size, ray_session, resolve_address, run_shards

    started = time.perf_counter()
    work_path = Path(workdir) if workdir is not None else default_workdir(out)
    shard_size = shard_size or DEFAULT_SHARD_SIZE
    threads_per_actor = threads_per_actor or 1
    worker_retries = 3 if worker_retries is None else worker_retries
    if work_path.resolve() == out.resolve():
        raise DistributedError(f"{work_path}: --workdir and --out must differ (the workdir is a folder)")
    status = check_workdir(work_path, [images, model], resume=resume)  # before any work
    ray = import_ray()
    resolved = resolve_address(ray, address)
    entries = list_catalogue(images, split=split, domain=domain)
    embedder = load_embedder(model, format=fmt, precision=precision, threads=1)
    model_file = Path(embedder.model_path).resolve()
    model_info = {"embedding_space_id": embedder.embedding_space_id, "sha256": sha256_file(model_file),
                  "file": model_file.name, "format": fmt, "precision": precision}
    plan = make_plan(entries, shard_size, model_info, source=str(images))
    stats = RayBuildStats(images=len(entries), shards=len(plan.shards))
    if status == "new":
        work_path.mkdir(parents=True, exist_ok=True)
    with folder_lock(work_path, work_path, DistributedError):
        work = open_workdir(work_path, plan, status)
        work.remove_leftovers()
        done = committed_shards(work, plan)  # a damaged shard is refused here, before Ray starts
        pending = [s for s in plan.shards if s.shard_id not in done]
        stats.shards_reused = len(done)
        if pending:
            bar = _Progress(0, 0, False)  # drawn once Ray is up: its start-up is not embedding time

            def on_shard(row: dict[str, Any]) -> None:
                stats.shards_embedded += 1
                stats.images_embedded += int(row["images"])
                stats.embedded_ids.append(int(row["shard"]))
                stats.nodes.add(str(row["node_id"]))
                acc = stats.per_actor.setdefault((str(row["node_id"]), int(row["pid"])), [0, 0.0])
                acc[0] += int(row["images"])
                acc[1] += float(row["seconds"])
                bar.update(int(row["images"]))

            ray_started = time.perf_counter()
            try:
                with ray_session(ray, resolved):
                    stats.actors = pool_size(ray, actors, threads_per_actor)
                    bar = _Progress(sum(len(s) for s in pending), len(pending), progress)
                    run_shards(ray, plan, pending, shards_dir=str(work.shards_dir.resolve()),
                               model=str(model_file), fmt=fmt, precision=precision, model_sha256=model_info["sha256"],
                               batch_size=batch_size, actors=stats.actors, threads_per_actor=threads_per_actor,
                               worker_retries=worker_retries, on_shard=on_shard, shard_hook=shard_hook)
            except DistributedError:
                raise
            except Exception as exc:  # the engine's failure, on one line, with what is kept
                from .ray_engine import describe_failure

                kept = sum((work.shards_dir / f"{s.name}.done.json").exists() for s in plan.shards)
                raise DistributedError(f"the Ray run stopped: {describe_failure(exc)}; {kept} of {len(plan.shards)} "
                                       f"shards are done in {work.path}: rerun with --resume to embed only "
                                       "the others") from None
            finally:
                bar.close()
            stats.ray_s = time.perf_counter() - ray_started
            for s in pending:
                record = read_done(work.shards_dir, s, plan.plan_id)
                if record is None:
                    raise DistributedError(f"{work.shards_dir / s.name}: not done after the Ray run; rerun with --resume")
                done[s.shard_id] = record
        info = {"source": str(images), "image_root": str(catalogue_root(images)), "split": split, "domain": domain}
        index, failures = merge_index(work, plan, done, embedder, storage=storage, skip_bad=skip_bad, info=info)
    stats.bad = sum(int(d["bad"]) for d in done.values())
    stats.wall_s = time.perf_counter() - started
    echo(stats.summary(work.path))
    return index, failures, stats


__all__ = ["RAY_ONLY_OPTIONS", "RayBuildStats", "check_engine_options", "default_workdir", "ray_build"]
