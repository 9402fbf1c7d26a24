"""Shards, the workdir and its files: everything of a Ray build that is not Ray.

Why this is where exactly-once lives: a distributed run may embed a shard twice (a worker dies
after writing, Ray retries; a driver dies and ``--resume`` starts again), so correctness cannot
rest on the engine running each piece once. It rests on three facts kept here instead:

1. **Fixed shards.** The catalogue is listed once, in the order a one-process build uses
   (``catalogue.list_catalogue``: sorted for a folder, row order for a manifest), and cut into
   shards of ``shard_size`` entries; shard ``i`` always holds entries ``[i*S, (i+1)*S)`` and is
   always written under the same names (``shards/shard-00012.*``), never a per-run uuid.
2. **Commit by done-marker.** A shard's vectors (``.npy``) and its ids, metadata and bad images
   (``.json``) are written through the project's atomic writer; the done-marker
   (``.done.json``, with the sha256 of both files) is written last. A shard without a marker
   does not exist, whatever else is on disk; two writers of one shard write the same bytes.
3. **Identity.** ``workdir.json`` records the model (embedding space id, artefact sha256), the
   catalogue's sha256 and the shard size; every marker records the plan id derived from them.
   A workdir from another model, catalogue or shard size is refused, never mixed in.

The workdir carries the output policy's marker (kind ``ray-workdir``): a folder without it is
the user's, and is refused rather than written into.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..catalogue import CatalogueEntry
from ..fileio import atomic_path
from ..jsonio import JsonError
from ..jsonio import dumps as json_dumps
from ..jsonio import loads as json_loads
from ..locking import ordinary_file_mode
from ..output_policy import MARKER_NAME, OutputRefused, check_inputs, read_marker, write_marker
from ..version import __version__
from . import DistributedError

WORKDIR_FORMAT = "deepproduct-ray-workdir"
WORKDIR_VERSION = 1
DONE_FORMAT = "deepproduct-ray-shard"
#: The output-policy marker's kind for a Ray workdir (``.deepproduct-output.json``).
MARKER_KIND = "ray-workdir"
MARKER_OWNER = "dp-search"
STATE_FILE = "workdir.json"
SHARDS_DIR = "shards"
DEFAULT_SHARD_SIZE = 1000
#: What ``atomic_path`` leaves behind when a writer is killed mid-file: ``.shard-00012.npy.<random>.tmp``.
_LEFTOVER = re.compile(r"^\.shard-\d+\.(npy|json|done\.json)\.[A-Za-z0-9_]+\.tmp$")


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def shard_name(shard_id: int) -> str:
    """``shard-00012``: fixed per shard id, so a rerun writes the same names (never a per-run uuid)."""
    return f"shard-{shard_id:05d}"


def _entry_line(entry: CatalogueEntry) -> bytes:
    """One entry as canonical JSON: absolute path, product id, metadata and the file's size.

    The size is there so that an image replaced by another of another size is another catalogue;
    contents are not read (listing a million files must not read a million files)."""
    path = os.path.abspath(entry.path)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = -1  # a missing file is a bad image at embedding time; here it is part of the identity
    return json_dumps([path, entry.product_id, entry.metadata, size], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


@dataclass(frozen=True)
class Shard:
    """Catalogue entries ``[start, stop)``; ``entries_sha256`` pins exactly which ones."""

    shard_id: int
    start: int
    stop: int
    entries_sha256: str

    @property
    def name(self) -> str:
        return shard_name(self.shard_id)

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass
class BuildPlan:
    """The catalogue cut into shards, plus what makes a workdir this build's and no other's."""

    entries: list[CatalogueEntry]
    shard_size: int
    shards: list[Shard]
    catalogue_sha256: str
    #: embedding_space_id, sha256 (of the artefact file), file, format, precision.
    model: dict[str, str]
    source: str = ""

    @property
    def plan_id(self) -> str:
        """One hash of model, catalogue and shard size: every done-marker must carry it."""
        key = json_dumps([self.model["embedding_space_id"], self.model["sha256"], self.catalogue_sha256,
                          self.shard_size], separators=(",", ":"))
        return sha256_bytes(key.encode("utf-8"))

    def identity(self) -> dict[str, Any]:
        """The content of ``workdir.json``."""
        return {"format": WORKDIR_FORMAT, "version": WORKDIR_VERSION, "created_by": f"deepproduct {__version__}",
                "plan_id": self.plan_id, "model": dict(self.model),
                "catalogue": {"sha256": self.catalogue_sha256, "images": len(self.entries), "source": self.source},
                "shard_size": self.shard_size, "shards": len(self.shards)}

    def items(self, shard: Shard) -> list[list[Any]]:
        """What a worker needs of a shard: [absolute path, product id, metadata] per entry."""
        return [[os.path.abspath(e.path), e.product_id, e.metadata] for e in self.entries[shard.start:shard.stop]]


def make_plan(entries: Sequence[CatalogueEntry], shard_size: int, model: dict[str, str], source: str = "") -> BuildPlan:
    """Cut ``entries`` (in the one-process build's order) into fixed shards and hash them."""
    if shard_size < 1:
        raise DistributedError(f"--shard-size must be at least 1, got {shard_size}")
    entries = list(entries)
    whole = hashlib.sha256()
    shards = []
    for shard_id, start in enumerate(range(0, len(entries), shard_size)):
        stop = min(start + shard_size, len(entries))
        part = hashlib.sha256()
        for e in entries[start:stop]:
            line = _entry_line(e)
            part.update(line)
            whole.update(line)
        shards.append(Shard(shard_id, start, stop, part.hexdigest()))
    return BuildPlan(entries, shard_size, shards, whole.hexdigest(), dict(model), source)


# ---------------------------------------------------------------------------------------- shard files
def _write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target, mode=ordinary_file_mode(), durable=True) as tmp:
        tmp.write_bytes(data)


def npy_bytes(vectors: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def write_shard(shards_dir: str | os.PathLike, shard_id: int, *, plan_id: str, entries_sha256: str,
                product_ids: Sequence[str], metadata: Sequence[dict[str, Any]], vectors: np.ndarray,
                ok: Sequence[int], failures: Sequence[tuple[int, str]], images: int,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write one shard's files, the done-marker last; returns the marker's content.

    ``ok``: local indices of the images that embedded (rows of ``vectors``, in order);
    ``failures``: (local index, problem) of those that did not -- ``--skip-bad`` decides at merge.
    """
    shards_dir = Path(shards_dir)
    name = shard_name(shard_id)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(ok):
        raise DistributedError(f"{name}: {vectors.shape} vectors for {len(ok)} readable images")
    vec = npy_bytes(vectors)
    doc = {"shard": shard_id, "images": images, "ok": [int(i) for i in ok], "product_ids": list(product_ids),
           "metadata": list(metadata), "failures": [[int(i), str(m)] for i, m in failures]}
    items = (json_dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    _write_bytes(shards_dir / f"{name}.npy", vec)
    _write_bytes(shards_dir / f"{name}.json", items)
    done = {"format": DONE_FORMAT, "version": WORKDIR_VERSION, "shard": shard_id, "plan_id": plan_id,
            "entries_sha256": entries_sha256, "images": images, "embedded": len(ok), "bad": len(failures),
            "dim": int(vectors.shape[1]),
            "files": {f"{name}.npy": sha256_bytes(vec), f"{name}.json": sha256_bytes(items)},
            **(extra or {})}
    _write_bytes(shards_dir / f"{name}.done.json",
                 (json_dumps(done, sort_keys=True, indent=1) + "\n").encode("utf-8"))
    return done


@dataclass
class ShardData:
    """A committed shard read back and verified: its vectors, which entries they are, and its bad images."""

    shard: Shard
    vectors: np.ndarray
    ok: np.ndarray
    failures: list[tuple[int, str]] = field(default_factory=list)
    done: dict[str, Any] = field(default_factory=dict)


def _damaged(path: Path, problem: str) -> DistributedError:
    return DistributedError(f"{path}: {problem}; this shard is damaged: delete its done-marker "
                            f"({path.parent / (path.name.split('.')[0] + '.done.json')}) to embed it again "
                            "with --resume, or start a new --workdir")


def read_done(shards_dir: Path, shard: Shard, plan_id: str) -> dict[str, Any] | None:
    """The shard's done-marker, checked against this plan; None when the shard is not committed."""
    path = shards_dir / f"{shard.name}.done.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        done = json_loads(raw, source=str(path))
    except JsonError as exc:
        raise _damaged(path, f"not a valid done-marker ({exc.problem})") from None
    if not isinstance(done, dict) or done.get("format") != DONE_FORMAT or done.get("shard") != shard.shard_id:
        raise _damaged(path, "not a done-marker of this shard")
    if done.get("plan_id") != plan_id or done.get("entries_sha256") != shard.entries_sha256:
        raise _damaged(path, "written for another model, catalogue or shard size than this workdir's")
    files = done.get("files")
    if not isinstance(files, dict) or set(files) != {f"{shard.name}.npy", f"{shard.name}.json"}:
        raise _damaged(path, "lists no checksums of the shard's files")
    return done


def _checked_bytes(shards_dir: Path, name: str, done: dict[str, Any]) -> bytes:
    path = shards_dir / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _damaged(path, "missing, though its done-marker exists") from None
    if sha256_bytes(data) != done["files"][name]:
        raise _damaged(path, "checksum (sha256) differs from its done-marker")
    return data


def load_shard(shards_dir: str | os.PathLike, shard: Shard, plan_id: str,
               done: dict[str, Any] | None = None) -> ShardData:
    """Read a committed shard, verifying both files against the sha256 in its done-marker."""
    shards_dir = Path(shards_dir)
    done = done or read_done(shards_dir, shard, plan_id)
    if done is None:
        raise DistributedError(f"{shards_dir / shard.name}: shard not done (no done-marker)")
    vec_raw = _checked_bytes(shards_dir, f"{shard.name}.npy", done)
    items_raw = _checked_bytes(shards_dir, f"{shard.name}.json", done)
    path = shards_dir / f"{shard.name}.npy"
    try:
        vectors = np.load(io.BytesIO(vec_raw), allow_pickle=False)
        doc = json_loads(items_raw, source=str(shards_dir / f"{shard.name}.json"))
    except (ValueError, OSError) as exc:
        raise _damaged(path, f"unreadable ({exc})") from None
    ok = np.asarray(doc.get("ok", []), dtype=np.int64)
    failures = [(int(i), str(m)) for i, m in doc.get("failures", [])]
    if (vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != len(ok)
            or len(ok) + len(failures) != len(shard) or doc.get("images") != len(shard)
            or (len(ok) and (ok.min() < 0 or ok.max() >= len(shard)))):
        raise _damaged(path, "its vectors, ids and bad images do not add up to the shard's entries")
    return ShardData(shard, vectors, ok, failures, done)


def verify_shard(shards_dir: str | os.PathLike, shard: Shard, plan_id: str) -> dict[str, Any] | None:
    """The done-marker of a committed shard whose files match their checksums; None if not committed."""
    shards_dir = Path(shards_dir)
    done = read_done(shards_dir, shard, plan_id)
    if done is None:
        return None
    for name in done["files"]:
        _checked_bytes(shards_dir, name, done)
    return done


# ---------------------------------------------------------------------------------------- the workdir
@dataclass
class Workdir:
    """A Ray build's working folder: ``workdir.json``, ``shards/`` and the output-policy marker."""

    path: Path

    @property
    def shards_dir(self) -> Path:
        return self.path / SHARDS_DIR

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def read_state(self) -> dict[str, Any] | None:
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = json_loads(raw, source=str(self.state_file))
        except JsonError as exc:
            raise DistributedError(f"{exc} (the workdir's state is damaged; use a new --workdir)") from None
        if not isinstance(state, dict) or state.get("format") != WORKDIR_FORMAT:
            raise DistributedError(f"{self.state_file}: not a Ray workdir state file of dp-search")
        if not isinstance(state.get("version"), int) or state["version"] > WORKDIR_VERSION:
            raise DistributedError(f"{self.state_file}: workdir version {state.get('version')!r} is newer than "
                                   f"this deepproduct ({WORKDIR_VERSION}); use a new --workdir")
        return state

    def remove_leftovers(self) -> int:
        """Temporary files of writers killed mid-file (ours: this folder is marked, the names are ours)."""
        removed = 0
        if self.shards_dir.is_dir():
            for entry in os.scandir(self.shards_dir):
                if _LEFTOVER.match(entry.name) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed += 1
        return removed


def check_workdir(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *, resume: bool) -> str:
    """The output policy for ``--workdir``, before any work: ``"new"`` or ``"existing"`` (ours, resumable).

    Refused (one line, nothing written): a workdir that is or holds an input, a file, a folder with
    content that is not a Ray workdir of ours; an existing one of ours without ``--resume``.
    """
    path = Path(path)
    check_inputs(path, inputs, "--workdir")
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        raise OutputRefused(path, "--workdir exists and is not a folder; give a folder name")
    if not path.exists() or not any(os.scandir(path)):
        return "new"
    marker = read_marker(path)
    if marker is None or marker.get("kind") != MARKER_KIND:
        what = "another DeepProduct output" if marker is not None else f"not written by DeepProduct (no {MARKER_NAME})"
        raise OutputRefused(path, f"--workdir is not a Ray workdir of dp-search ({what}); refusing to write "
                                  "into it: choose a new folder")
    state = Workdir(path).read_state()
    if state is None:  # marked, but killed before its state was written: nothing of it can be lost
        if Path(path, SHARDS_DIR).is_dir() and any(os.scandir(Path(path, SHARDS_DIR))):
            raise OutputRefused(path, f"--workdir has shards but no {STATE_FILE}; refusing to guess whose they "
                                      "are: choose a new folder")
        return "new"
    if not resume:
        raise DistributedError(f"{path}: --workdir holds a previous Ray build; pass --resume to continue it "
                               "(only its unfinished shards are embedded), or choose a new --workdir")
    return "existing"


def _describe_mismatch(state: dict[str, Any], plan: BuildPlan) -> str | None:
    model, want = state.get("model") or {}, plan.model
    if model.get("embedding_space_id") != want["embedding_space_id"]:
        return (f"was made with another model (embedding space {model.get('embedding_space_id')!r}, "
                f"this model's is {want['embedding_space_id']!r})")
    if model.get("sha256") != want["sha256"]:
        return (f"was made with another model file (sha256 {str(model.get('sha256'))[:12]}..., "
                f"this {want['format']} {want['precision']} artefact's is {want['sha256'][:12]}...)")
    cat = state.get("catalogue") or {}
    if cat.get("sha256") != plan.catalogue_sha256:
        return (f"was made for another catalogue ({cat.get('images')} images, sha256 {str(cat.get('sha256'))[:12]}...; "
                f"this one has {len(plan.entries)} images, sha256 {plan.catalogue_sha256[:12]}...)")
    if state.get("shard_size") != plan.shard_size:
        return f"was cut into shards of {state.get('shard_size')} images, not --shard-size {plan.shard_size}"
    if state.get("plan_id") != plan.plan_id:
        return "records another plan id than its model, catalogue and shard size give"
    return None


def open_workdir(path: str | os.PathLike, plan: BuildPlan, status: str) -> Workdir:
    """Create a new workdir (marker, then state) or check an existing one against ``plan``."""
    work = Workdir(Path(path))
    state = work.read_state() if status == "existing" else None
    if state is not None:
        problem = _describe_mismatch(state, plan)
        if problem:
            raise DistributedError(f"{work.path}: this workdir {problem}; use a new --workdir "
                                   "(shards of different builds are never mixed)")
    else:
        work.path.mkdir(parents=True, exist_ok=True)
        write_marker(work.path, MARKER_OWNER, MARKER_KIND)  # first: from now on the folder is ours
        with atomic_path(work.state_file, mode=ordinary_file_mode(), durable=True) as tmp:
            tmp.write_text(json_dumps(plan.identity(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    work.shards_dir.mkdir(exist_ok=True)
    return work


def committed_shards(work: Workdir, plan: BuildPlan) -> dict[int, dict[str, Any]]:
    """Shard id -> done-marker of every committed shard, each file's checksum verified."""
    return {s.shard_id: done for s in plan.shards
            if (done := verify_shard(work.shards_dir, s, plan.plan_id)) is not None}


__all__ = ["BuildPlan", "Shard", "ShardData", "Workdir", "check_workdir", "committed_shards", "load_shard",
           "make_plan", "open_workdir", "read_done", "shard_name", "verify_shard", "write_shard"]
