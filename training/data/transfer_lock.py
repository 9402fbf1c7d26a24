"""The transfer benchmark's source lock: every file of every registered source that ``dp-data
transfer`` builds from, by path relative to its source's root, with its sha256 and the number of
candidate products it gives.

Why: the set is built from files that packages install (``transfer_sources``), and package
versions differ between machines -- one machine found 160 Tux Paint products where another found
154, so their figures could not be compared. With the lock in the repository, ``dp-data transfer``
uses exactly the locked files; a missing or different file is named, with what it does to the set
(how many products fewer), and the command refuses unless ``--allow-missing-sources`` is given,
which builds the smaller set and records the difference in ``transfer.json``. Never a silently
different set. Files a newer package adds are ignored (they are not in the lock).

``dp-data transfer-lock`` writes the lock from this machine's installed sources
(``--check`` only compares); docs/transfer-benchmark.md says when to rewrite it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from deepproduct.sdk.fileio import read_text_input
from deepproduct.sdk.model_manifest import sha256_file
from deepproduct.training.data.transfer_sources import SOURCES, TransferSourceError

LOCK_PATH = Path(__file__).with_name("transfer_sources.lock.json")
LOCK_FORMAT = "deepproduct-transfer-lock"
LOCK_VERSION = 1


class TransferLockError(TransferSourceError):
    """The lock file cannot be used, or the installed sources differ from it; the message says which
    file and what it does to the set."""


@dataclass(frozen=True)
class SourceFile:
    """One file a source contributes: where it is here, its path relative to the source's root (the
    same on every machine) and its sha256."""

    path: Path
    rel: str
    sha256: str


@dataclass(frozen=True)
class LockProblem:
    """A locked file this machine cannot supply as locked."""

    source: str
    rel: str
    reason: str  # "missing", "not installed" or "sha256 differs"
    products: int  # candidate products the locked file gives
    photo: bool  # the file is a photograph (also a background)

    def record(self) -> dict:
        return {"source": self.source, "file": self.rel, "reason": self.reason, "products": self.products}


def read_lock(path: str | os.PathLike = LOCK_PATH) -> dict:
    """The lock document; an unreadable or foreign file is an error naming it."""
    path = Path(path)
    try:
        doc = json.loads(read_text_input(path, "transfer source lock", max_bytes=16 << 20))
    except (OSError, ValueError) as exc:
        if not os.path.lexists(path):
            raise TransferLockError(f"{path}: transfer source lock not found; write it with `dp-data transfer-lock` "
                                    f"(docs/transfer-benchmark.md)") from exc
        if not isinstance(exc, json.JSONDecodeError):
            raise TransferLockError(str(exc)) from exc
        raise TransferLockError(f"{path}: cannot read the transfer source lock ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != LOCK_FORMAT or not isinstance(doc.get("sources"), dict):
        raise TransferLockError(f"{path}: not a transfer source lock (expected \"format\": \"{LOCK_FORMAT}\")")
    if doc.get("version") != LOCK_VERSION:
        raise TransferLockError(f"{path}: transfer source lock version {doc.get('version')!r}; "
                                f"this DeepProduct reads version {LOCK_VERSION}")
    return doc


def source_files(name: str, root: Path, paths: list[Path]) -> list[SourceFile]:
    """``paths`` under ``root`` as :class:`SourceFile` (hashed now, once)."""
    return [SourceFile(p, p.relative_to(root).as_posix(), sha256_file(p)) for p in paths]


def installed_files(name: str) -> list[SourceFile]:
    """Every file registered source ``name`` selects on this machine ([] when not installed)."""
    source = SOURCES[name]
    root = source.root()
    return source_files(name, root, source.find()) if root is not None else []


def locked_files(lock: dict, names: list[str]) -> tuple[dict[str, list[SourceFile]], list[LockProblem]]:
    """The locked files of sources ``names`` that this machine has, byte for byte, and the problems
    with the others (missing, not installed, different content)."""
    files: dict[str, list[SourceFile]] = {}
    problems: list[LockProblem] = []
    for name in names:
        entry = lock["sources"][name]
        root = SOURCES[name].root()
        ok = []
        for item in entry["files"]:
            rel, want, products = item["path"], item["sha256"], int(item["products"])
            photo = bool(item.get("photo", False))
            path = root / rel if root is not None else None
            if path is None or not path.is_file():
                reason = "not installed" if root is None or not root.is_dir() else "missing"
                problems.append(LockProblem(name, rel, reason, products, photo))
                continue
            got = sha256_file(path)
            if got != want:
                problems.append(LockProblem(name, rel, f"sha256 {got[:12]} differs from the lock's {want[:12]}",
                                            products, photo))
                continue
            ok.append(SourceFile(path, rel, got))
        files[name] = ok
    return files, problems


def describe_problems(problems: list[LockProblem], lock: dict, names: list[str], n_products: int,
                      lock_path: str | os.PathLike) -> str:
    """One line: which locked files are missing or different and what that does to the set."""
    total = sum(int(f["products"]) for n in names for f in lock["sources"][n]["files"])
    lost = sum(p.products for p in problems)
    photos = sum(p.photo for p in problems)
    shown = "; ".join(f"{p.source} {p.rel}: {p.reason}" for p in problems[:3])
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    want, have = min(n_products, total), min(n_products, total - lost)
    if have < want:
        effect = f"the set would have {have} products instead of {want}"
    elif lost:
        effect = f"the set keeps {have} products but up to {min(lost, have)} of them are replaced by others"
    else:
        effect = "no product is lost but the backgrounds differ"
    bg = f" and {photos} background photo(s)" if photos else ""
    return (f"{lock_path}: {len(problems)} locked transfer source file(s) missing or different ({shown}{more}); "
            f"without them the sources give {lost} fewer candidate products ({total - lost} of {total}){bg}, "
            f"so {effect} (--products {n_products})")


def dump_lock(doc: dict) -> str:
    """The lock as JSON text, one file per line (readable diffs when a package changes)."""
    lines = ["{"]
    head = {k: v for k, v in doc.items() if k != "sources"}
    for k, v in head.items():
        lines.append(f" {json.dumps(k)}: {json.dumps(v)},")
    lines.append(' "sources": {')
    names = list(doc["sources"])
    for i, name in enumerate(names):
        entry = doc["sources"][name]
        lines.append(f"  {json.dumps(name)}: {{")
        for k, v in entry.items():
            if k != "files":
                lines.append(f"   {json.dumps(k)}: {json.dumps(v)},")
        lines.append('   "files": [')
        files = entry["files"]
        lines += [f"    {json.dumps(f)}{',' if j < len(files) - 1 else ''}" for j, f in enumerate(files)]
        lines.append("   ]")
        lines.append("  }" + ("," if i < len(names) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def lock_document(files: dict[str, list[SourceFile]], products: dict[tuple[str, str], int],
                  photos: set[tuple[str, str]], generator_version: int) -> dict:
    """The lock for ``files`` (per source), with each file's candidate product count."""
    from importlib import metadata

    def version(package: str) -> str | None:
        kind, _, name = package.partition(": ")
        if kind == "pip":
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return None
        return _dpkg_version(name)

    sources = {}
    for name, items in sorted(files.items()):
        src = SOURCES[name]
        # Only the files that shape the set: a product's file or a photograph (also a background).
        used = [f for f in items if products.get((name, f.rel), 0) or (name, f.rel) in photos]
        sources[name] = {
            "package": src.package, "package_version": version(src.package), "kind": src.kind,
            "files_seen": len(items), "products": sum(products.get((name, f.rel), 0) for f in used),
            "files": [{"path": f.rel, "sha256": f.sha256, "products": products.get((name, f.rel), 0),
                       **({"photo": True} if (name, f.rel) in photos else {})} for f in used],
        }
    return {"format": LOCK_FORMAT, "version": LOCK_VERSION, "generator_version": generator_version,
            "written_by": "dp-data transfer-lock", "sources": sources}


def _dpkg_version(package: str) -> str | None:
    """The installed Debian package's version (informational; the sha256s are what is checked)."""
    status = Path("/var/lib/dpkg/status")
    try:
        text = status.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for block in text.split("\n\n"):
        if f"Package: {package}\n" in block + "\n" and "Status: install ok installed" in block:
            for line in block.splitlines():
                if line.startswith("Version: "):
                    return line.removeprefix("Version: ")
    return None
