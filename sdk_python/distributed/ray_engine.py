"""Ray Data: connect to a cluster and embed the missing shards on an actor pool.

The only module of the SDK that imports Ray, and only inside its functions, so
``deepproduct.sdk`` imports without it. Written against Ray 2.60.0 (the ``distributed`` extra pins
it exactly: Ray Data's API moves between minor releases). The pitfalls met when this was first
tried, and what handles each:

* **Starved pools.** Actors asking ``num_cpus=1`` each on a 2-CPU machine leave nothing for Ray
  Data's own tasks and the run waits forever, silently. Each actor asks for
  :func:`cpu_request` (``0.75 x threads``), the pool is sized from the cluster's CPUs, an
  oversized ``--actors`` is refused before starting, and Ray Data's wait for actors is bounded.
* **Token auth** (Ray >= 2.59 turns it on for local clusters). A private local cluster gets a fresh
  random token in this process's environment (never written to ``~/.ray``); connecting to a
  cluster that wants one and finding none is a one-line error naming ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN``.
* **Workers that cannot import the project.** Each actor checks at start that it runs this same
  deepproduct version; an ImportError on a worker becomes a one-line error saying to install
  ``deepproduct[distributed]`` on every node or ship it with a ``runtime_env``.
* **Unreachable addresses.** ``ray.init`` retries an unreachable address for minutes; the address is
  resolved and probed with a plain TCP connection (5 s) first.
* **Per-run names.** Nothing here names a file: shard files have fixed names (:mod:`.plan`).
* ``ray stop`` kills every Ray process of the machine: never used; a private cluster is ended by
  ``ray.shutdown()``, a connected one is only disconnected from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any
from unittest import mock

import numpy as np

from ..jsonio import dumps as json_dumps
from ..jsonio import loads as json_loads
from ..version import __version__
from . import EXTRA, RAY_VERSION, DistributedError
from .plan import BuildPlan, Shard, write_shard

#: CPUs each actor asks Ray for, per onnxruntime thread: below 1 so that an actor per core still
#: leaves Ray Data's own tasks room (the starvation pitfall above).
CPU_PER_THREAD = 0.75
#: How long Ray Data may wait for the actor pool to start before failing (installing a runtime_env
#: on a fresh node takes minutes; forever is what Ray does by default).
WAIT_FOR_ACTORS_S = 600
PROBE_TIMEOUT_S = 5.0


def import_ray() -> ModuleType:
    """Ray and Ray Data, or a one-line error naming the extra that installs them."""
    try:
        import ray
        import ray.data  # noqa: F401 -- Ray Data is the part of "ray[data]" the engine needs
    except ImportError as exc:
        raise DistributedError(f"--engine ray needs Ray, which is not installed here ({exc}); install the "
                               f"extra: pip install 'deepproduct[{EXTRA}]' (Ray {RAY_VERSION})") from None
    if ray.__version__ != RAY_VERSION:
        raise DistributedError(f"--engine ray is written for Ray {RAY_VERSION} (its API changes between minor "
                               f"releases) but Ray {ray.__version__} is installed: pip install 'deepproduct[{EXTRA}]'")
    return ray


def cpu_request(threads_per_actor: int) -> float:
    return round(CPU_PER_THREAD * threads_per_actor, 4)


def resolve_address(ray: ModuleType, address: str | None) -> str | None:
    """``None`` (start a private local cluster) or a reachable ``host:port``; one-line errors otherwise."""
    if address is None:
        return None
    from ray._private import services  # pinned Ray: the same resolution ray.init itself performs

    try:
        resolved = services.canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError) as exc:
        raise DistributedError(f"--address {address}: {' '.join(str(exc).split())}") from None
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DistributedError(f"--address {address}: no Ray cluster reachable at {resolved} ({reason}); start one "
                               "with `ray start --head` there, or check the host, the port and the firewall") from None
    return resolved


@contextlib.contextmanager
def ray_session(ray: ModuleType, address: str | None) -> Iterator[None]:
    """Connect to ``address`` (or start a private local cluster) for the duration; always disconnect."""
    try:
        with mock.patch.dict(os.environ):  # the auth settings below (and Ray's own) end with the session
            yield from _ray_session(ray, address)
    finally:
        _refresh_auth()  # Ray re-reads the restored settings


def _ray_session(ray: ModuleType, address: str | None) -> Iterator[None]:
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        kwargs["include_dashboard"] = False
        if not any(os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
            # Ray >= 2.59 turns token auth on for a new local cluster (ray.init sets RAY_AUTH_MODE and
            # refreshes its config) and would write a generated token to ~/.ray/auth_token; a private
            # cluster gets a token of its own in the environment instead, inherited by its processes.
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
            _refresh_auth()
    try:
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:  # Ray raises ConnectionError, AuthenticationError, RuntimeError, ...
            text = " ".join(str(exc).split())
            hint = ""
            if "auth" in text.lower() or "token" in text.lower():
                hint = ("; the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                        "(or the token file ~/.ray/auth_token) as on its nodes")
            raise DistributedError(f"cannot start or join Ray{f' at {address}' if address else ''}: "
                                   f"{text[:400]}{hint}") from None
        _quiet_ray_data(ray)
        yield
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()  # a private cluster ends here; a joined one is only disconnected from


def _refresh_auth() -> None:
    """Make this process's Ray re-read the auth settings from the environment.

    Ray caches the mode and the token per process; a second build in one process (a benchmark, a
    test) would otherwise present the first private cluster's token to the second. Ray 2.60's own
    calls for this (``Config.initialize``, the token loader's ``reset_cache``), hence the pin."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - another Ray is refused before this
        pass


def _quiet_ray_data(ray: ModuleType) -> None:
    """Ray Data's own progress bars and INFO lines off: this command draws its own progress."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.wait_for_min_actors_s = WAIT_FOR_ACTORS_S
    ctx.raise_original_map_exception = True
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


class ShardEmbedder:
    """One Ray Data actor: one onnxruntime session (the chosen artefact), whole shards per call.

    Each call embeds its shards and commits them to the workdir (files, then the done-marker) from
    the worker itself, so a result survives the driver; it returns one small summary row per shard.
    ``shard_hook(shard_id)``, when given, runs before each shard (tests use it to make a run slow
    enough to kill half-way; it is shipped to the workers with the actor's arguments).
    """

    def __init__(self, *, model: str, fmt: str, precision: str, threads: int, batch_size: int, shards_dir: str,
                 plan_id: str, space_id: str, model_sha256: str, version: str,
                 shard_hook: Callable[[int], None] | None = None) -> None:
        if version != __version__:
            raise DistributedError(f"this Ray worker runs deepproduct {__version__}, the driver {version}: install the "
                                   "same version on every node")
        import ray

        from ..embedders import load_embedder
        from ..model_manifest import sha256_file

        self.embedder = load_embedder(model, format=fmt, precision=precision, threads=threads)
        if self.embedder.embedding_space_id != space_id or sha256_file(self.embedder.model_path) != model_sha256:
            raise DistributedError(f"{model}: on node {ray.get_runtime_context().get_node_id()} this path holds "
                                   "another model than on the driver; every node must see the same files")
        self.batch_size = batch_size
        self.shards_dir = shards_dir
        self.plan_id = plan_id
        self.node_id = ray.get_runtime_context().get_node_id()
        self.host = socket.gethostname()
        self.hook = shard_hook

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.embed_shard(int(shard), str(sha), str(items))
                for shard, sha, items in zip(batch["shard"], batch["entries_sha256"], batch["items"], strict=True)]
        return {key: np.asarray([r[key] for r in rows]) for key in rows[0]} if rows else {}

    def embed_shard(self, shard_id: int, entries_sha256: str, items_json: str) -> dict[str, Any]:
        if self.hook is not None:
            self.hook(shard_id)
        start = time.perf_counter()
        items = json_loads(items_json)
        report = self.embedder.embed_report([p for p, _, _ in items], batch_size=self.batch_size, progress=False)
        ok = report.ok_indices.tolist()
        bad = sorted(set(range(len(items))) - set(ok))
        seconds = time.perf_counter() - start
        write_shard(self.shards_dir, shard_id, plan_id=self.plan_id, entries_sha256=entries_sha256,
                    product_ids=[items[i][1] for i in ok], metadata=[items[i][2] for i in ok],
                    vectors=report.embeddings, ok=ok,
                    failures=[(i, msg) for i, (_, msg) in zip(bad, report.failures, strict=True)],
                    images=len(items), extra={"node_id": self.node_id, "host": self.host, "pid": os.getpid(),
                                              "seconds": round(seconds, 6), "created_by": f"deepproduct {__version__}"})
        return {"shard": shard_id, "images": len(items), "embedded": len(ok), "bad": len(bad),
                "seconds": seconds, "node_id": self.node_id, "pid": os.getpid()}


def cluster_cpus(ray: ModuleType) -> float:
    return float(ray.cluster_resources().get("CPU", 0.0))


def pool_size(ray: ModuleType, actors: int | None, threads_per_actor: int) -> int:
    """``--actors``, or as many as the cluster's CPUs hold; refused when it cannot start."""
    cpus = cluster_cpus(ray)
    need = cpu_request(threads_per_actor)
    fits = int((cpus + 1e-9) // need) if need else 0
    if actors is None:
        actors = max(1, min(fits, int(cpus // max(1, threads_per_actor)) or 1))
    if actors > fits:
        raise DistributedError(f"--actors {actors} x --threads-per-actor {threads_per_actor} asks Ray for "
                               f"{actors * need:g} CPUs ({need:g} each) but the cluster has {cpus:g}; Ray would "
                               f"wait forever for them: use at most {fits} actor(s)")
    return actors


def run_shards(ray: ModuleType, plan: BuildPlan, pending: Sequence[Shard], *, shards_dir: str, model: str,
               fmt: str, precision: str, model_sha256: str, batch_size: int, actors: int, threads_per_actor: int,
               worker_retries: int, on_shard: Callable[[dict[str, Any]], None],
               shard_hook: Callable[[int], None] | None = None) -> None:
    """Embed ``pending`` shards on a Ray Data actor pool; ``on_shard`` gets each summary as it lands.

    One block per shard, one shard per call, so the pool balances shard by shard and progress moves
    with each commit. ``worker_retries``: how often a dead actor is restarted and its shard retried
    (Ray Data's default is forever, which a shard that kills its worker every time never leaves).
    """
    rows = [{"shard": s.shard_id, "entries_sha256": s.entries_sha256, "items": json_dumps(plan.items(s))}
            for s in pending]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    kwargs = {"model": model, "fmt": fmt, "precision": precision, "threads": threads_per_actor,
              "batch_size": batch_size, "shards_dir": shards_dir, "plan_id": plan.plan_id,
              "space_id": plan.model["embedding_space_id"], "model_sha256": model_sha256, "version": __version__,
              "shard_hook": shard_hook}
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for actor restarts yet and warns that the **ray_remote_args
        # route goes away in 2.64: the exact pin is what keeps this call valid.
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(ShardEmbedder, batch_size=1, fn_constructor_kwargs=kwargs,
                            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpu_request(threads_per_actor),
                            max_restarts=worker_retries, max_task_retries=worker_retries)
    for row in ds.iter_rows():
        on_shard(dict(row))


def describe_failure(exc: BaseException) -> str:
    """A Ray failure on one line: the innermost cause's last line, not Ray's wrapped tracebacks."""
    seen = exc
    while True:
        inner = getattr(seen, "cause", None) or seen.__cause__
        if inner is None or inner is seen:
            break
        seen = inner
    lines = [ln.strip() for ln in str(seen).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(seen).__name__
    name = type(seen).__name__
    if "No module named" in text and "deepproduct" in text:
        text += (f" -- the Ray workers cannot import deepproduct: install deepproduct[{EXTRA}] on every node "
                 "(the same version), or start the job with a runtime_env that ships it (docs/distributed.md)")
    elif "ActorDied" in name or "actor died" in text.lower() or "died" in name.lower():
        text = f"a Ray worker died ({text[:300]})"
    return f"{name}: {text}" if not text.startswith(name) else text


__all__ = ["CPU_PER_THREAD", "ShardEmbedder", "cpu_request", "describe_failure", "import_ray", "pool_size",
           "ray_session", "resolve_address", "run_shards"]
