"""The package's import graph: no cycle anywhere, and a pure core that never reaches asyncio or
an HTTP library (issue 10, items 4 and 5).

The graph is read from the source with ``ast`` (nothing is imported): module-level imports only,
``if TYPE_CHECKING:`` blocks and imports inside functions excluded, as neither runs at import time
in a way that can deadlock a partially initialised module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "aiosls"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: The pure core: synchronous, deterministic, no event loop and no HTTP library.
PURE_CORE = (
    "_http",
    "_sansio",
    "_serde",
    "_text",
    "credentials",
    "endpoint",
    "errors",
    "health",
    "models",
    "names",
    "signing",
)
FORBIDDEN = frozenset({"asyncio", "aiohttp", "yarl", "multidict"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: module body, try/except, if/else
    (but not an ``if TYPE_CHECKING:`` branch), ``with``; never function or class bodies."""
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            body = [] if _is_type_checking(node.test) else node.body
            stack.extend(reversed([*body, *node.orelse]))
        elif isinstance(node, ast.Try):
            handlers = [s for h in node.handlers for s in h.body]
            stack.extend(reversed([*node.body, *handlers, *node.orelse, *node.finalbody]))
        elif isinstance(node, ast.With):
            stack.extend(reversed(node.body))


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> tuple[set[str], set[str]]:
    """``(aiosls modules, other top-level packages)`` that ``module`` imports at import time."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    internal: set[str] = set()
    external: set[str] = set()
    for node in _top_level_imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _resolve(module, node)
            # `from . import providers` names a submodule; `from .errors import X` a module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                internal.add(target)
            else:
                external.add(target.split(".")[0])
    return internal, external


GRAPH: dict[str, set[str]] = {m: imports_of(m)[0] for m in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (iterative DFS, three colours)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if start in state:
            continue
        path: list[str] = [start]
        iters = [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _with_parents(module: str) -> set[str]:
    """``module`` and the sub-packages whose ``__init__`` importing it runs (not the root
    package: its ``__init__`` is the public facade and imports everything by design)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts) + 1)}


def closure(module: str) -> set[str]:
    """Every aiosls module that importing ``module`` executes (itself included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for m in _with_parents(current):
            if m not in seen and m in MODULES:
                seen.add(m)
                todo.extend(GRAPH[m])
    return seen


def test_the_walk_sees_the_whole_package() -> None:
    # A walk that silently skipped modules would prove nothing.
    assert {"aiosls", "aiosls._sansio", "aiosls.service", "aiosls.transport.aiohttp"} <= set(MODULES)
    assert "aiosls.errors" in GRAPH["aiosls._sansio"]
    assert "aiosls.transport" in GRAPH["aiosls.transport.aiohttp"]


def test_no_import_cycle_in_the_package() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", PURE_CORE)
def test_pure_core_reaches_no_event_loop_or_http_library(module: str) -> None:
    name = f"{PACKAGE}.{module}"
    reached = closure(name)
    offenders = {
        f"{m} imports {ext}" for m in sorted(reached) for ext in imports_of(m)[1] if ext in FORBIDDEN
    }
    assert not offenders, f"{name} pulls in: " + "; ".join(sorted(offenders))


def test_pure_core_at_runtime_without_the_package_facade() -> None:
    # The same promise, checked by importing for real in a fresh interpreter (this also catches a
    # third-party dependency of the core that imports asyncio). aiosls/__init__ is bypassed: it
    # is the facade and imports the service on purpose.
    code = (
        "import importlib, sys, types\n"
        f"pkg = types.ModuleType({PACKAGE!r}); pkg.__path__ = [{str(ROOT)!r}]\n"
        f"sys.modules[{PACKAGE!r}] = pkg\n"
        f"for m in {PURE_CORE!r}: importlib.import_module({PACKAGE!r} + '.' + m)\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the walker itself ---------------------------------------------------------------------------


def test_find_cycle_reports_the_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_top_level_imports_skip_type_checking_and_function_bodies() -> None:
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import asyncio\nelse:\n    import json\n"
        "if typing.TYPE_CHECKING:\n    import aiohttp\n"
        "try:\n    import orjson\nexcept ImportError:\n    import re\n"
        "def f():\n    import yarl\n"
        "class C:\n    import multidict\n"
    )
    names = {
        a.name if isinstance(n, ast.Import) else (n.module or "")
        for n in _top_level_imports(tree)
        for a in n.names
    }
    assert names == {"os", "typing", "json", "orjson", "re"}


def test_lazy_reexport_keeps_old_import_path() -> None:
    from aiosls import credentials, providers

    assert credentials.RefreshingCredentialsProvider is providers.RefreshingCredentialsProvider
    assert credentials.DefaultCredentialsProvider is providers.DefaultCredentialsProvider
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        credentials.Nope  # noqa: B018
