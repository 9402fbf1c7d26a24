"""The package's module-level imports form no cycle, and the layers depend one way
(sdk <- training <- export <- benchmarks): read from the source, so a cycle that happens to import
fine today (Python tolerates some) still fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO_ROOT

PACKAGES = {"deepproduct.training": "training", "deepproduct.export": "export", "deepproduct.sdk": "sdk_python",
            "deepproduct.benchmarks": "benchmarks"}
LAYER = {"deepproduct.sdk": 0, "deepproduct.training": 1, "deepproduct.export": 2, "deepproduct.benchmarks": 3}


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in (REPO_ROOT / folder).rglob("*.py"):
            rel = path.relative_to(REPO_ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _import_targets(stmt: ast.Import | ast.ImportFrom, name: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    if isinstance(stmt, ast.Import):
        targets = [a.name for a in stmt.names]
    else:
        root = ".".join(base[:len(base) - stmt.level + 1]) if stmt.level else ""
        mod = ".".join(p for p in (root, stmt.module or "") if p)
        # ``from pkg import sub`` needs the submodule, not the package's other names
        targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in stmt.names]
    return {t for t in targets if t in known and t != name}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Attribute)) and \
                getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            out.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return out


def _imports(name: str, path: Path, known: set[str], *, kind: str) -> set[str]:
    """Targets of the module's imports. ``kind``: ``module`` (executed at import time: the module
    body), ``all`` (any depth: inside functions and methods too -- a loop through a function-level
    import is still a loop in the design, it only fails later) or ``type_checking``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = _type_checking_blocks(tree)
    if kind == "module":
        nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    else:
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    if kind == "type_checking":
        nodes = [n for n in nodes if id(n) in hidden]
    else:
        nodes = [n for n in nodes if id(n) not in hidden]
    found: set[str] = set()
    for stmt in nodes:
        found |= _import_targets(stmt, name, path, known)
    return found


def _module_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Targets of imports executed at import time (module body, not inside functions)."""
    return _imports(name, path, known, kind="module")


def _graph(kind: str = "module") -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules), kind=kind) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    graph = _graph()
    assert len(graph) > 50  # the scan saw the package
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_import_cycle_at_any_depth():
    """Imports inside functions count too: ``variants -> formats -> ... -> coreml_export -> variants``
    once hid behind a function-level import and passed the module-level test."""
    graph = _graph("all")
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_type_checking_imports_reported_separately():
    """``if TYPE_CHECKING:`` imports never run; a loop made only by them is listed, not failed on,
    but none may point up the layers."""
    only_typing = _graph("type_checking")
    def layer(module: str) -> int:
        return next(v for k, v in LAYER.items() if module == k or module.startswith(k + "."))
    upward = sorted(f"{a} -> {b}" for a, t in only_typing.items() for b in t if layer(b) > layer(a))
    assert not upward, upward


def test_layers_import_only_downwards():
    def layer(module: str) -> int:
        return next(v for k, v in LAYER.items() if module == k or module.startswith(k + "."))

    upward = sorted(f"{a} -> {b}" for a, targets in _graph("all").items() for b in targets if layer(b) > layer(a))
    assert not upward, upward


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
