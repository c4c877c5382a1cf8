"""The import graph of ``rerank_kit``: the core stands alone, and nothing imports in a circle.

Every module's explicit import statements are read with ``ast`` (not imported): top-level ones,
lazy ones inside functions, and ``TYPE_CHECKING`` blocks alike. ``import a.b`` is an edge to
``a.b``; ``from a import b`` is an edge to the module ``a.b`` when there is one, else to ``a``
(the package's ``__init__``); relative imports are resolved. A package's implicit import of its
parents' ``__init__`` modules does not count (every ``import rerank_kit._core.x`` runs
``rerank_kit/__init__.py`` first; that is not a decision of the importing module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import rerank_kit

ROOT = Path(rerank_kit.__file__).resolve().parent
PACKAGE = "rerank_kit"
CORE = "rerank_kit._core"
#: What the core must never import, at any time (the layers above it).
ABOVE_THE_CORE = (
    "rerank_kit._rerankers",
    "rerank_kit._registry",
    "rerank_kit.models",
    "rerank_kit.evaluation",
    "rerank_kit.learning",
)


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([package, *parts])] = path
    return found


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]  # a module's level 1 is its package
    drop = node.level - 1
    if drop > len(parts) - 1:
        raise ValueError(f"{module}: relative import beyond the top-level package")
    parts = parts[: len(parts) - drop]
    return ".".join([*parts, node.module] if node.module else parts)


def _known(name: str, modules: Iterable[str]) -> str | None:
    """``name`` or its nearest parent that is a module of ours (``None``: not ours)."""
    known = set(modules)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(
    module: str, source: str, modules: Iterable[str], is_package: bool = False
) -> set[str]:
    """The modules of ours that ``module``'s import statements name (lazy ones included).

    Example:
        >>> sorted(imports_of("p.a", "from . import b\\nfrom .c import f\\nimport p.d.e as x",
        ...                   ["p", "p.a", "p.b", "p.c", "p.d", "p.d.e"]))
        ['p.b', 'p.c', 'p.d.e']
    """
    known = set(modules)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, known)
                if target is not None:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in known else _known(base, known)
                if target is not None:
                    found.add(target)
    found.discard(module)
    return found


def import_graph(files: Mapping[str, Path] | None = None) -> dict[str, set[str]]:
    """Each module of ``rerank_kit`` -> the modules of ``rerank_kit`` it imports."""
    files = module_files() if files is None else files
    return {
        name: imports_of(name, path.read_text(encoding="utf-8"), files, path.name == "__init__.py")
        for name, path in files.items()
    }


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def one_cycle(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is not a cycle")


def describe_cycles(graph: Mapping[str, set[str]]) -> list[str]:
    """One line per import cycle: a shortest loop, then every module of its component."""
    lines = []
    for component in strongly_connected(graph):
        loop = " -> ".join(one_cycle(graph, component))
        lines.append(f"{loop}  (all {len(component)} modules: {', '.join(component)})")
    return lines


# -- the checker checks itself --------------------------------------------------------------


def test_relative_lazy_and_type_checking_imports_are_read() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..b import B\n"
        "def f():\n    from . import c\n    import p.d\n"
        "from p import x\n"
    )
    modules = ["p", "p.a", "p.a.m", "p.a.c", "p.b", "p.d"]
    assert imports_of("p.a.m", source, modules) == {"p.b", "p.a.c", "p.d", "p"}
    assert imports_of("p.a", "from . import c\nfrom .c import y", modules, True) == {"p.a.c"}


def test_a_cycle_is_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert describe_cycles(graph) == ["a -> b -> c -> a  (all 3 modules: a, b, c)"]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_every_module() -> None:
    graph = import_graph()
    assert "rerank_kit._core.protocol" in graph
    assert "rerank_kit._core.assembly" in graph  # a package stands for its __init__
    assert "rerank_kit._core.ranking" in graph["rerank_kit._core.protocol"]


# -- the rules -------------------------------------------------------------------------------


def test_the_core_imports_nothing_above_it() -> None:
    graph = import_graph()
    reaches = {
        module: sorted(
            target
            for target in targets
            if target == PACKAGE
            or any(target == p or target.startswith(p + ".") for p in ABOVE_THE_CORE)
        )
        for module, targets in graph.items()
        if module == CORE or module.startswith(CORE + ".")
    }
    bad = {module: targets for module, targets in reaches.items() if targets}
    assert not bad, f"rerank_kit._core imports from above it (lazy ones included): {bad}"


def test_the_core_imports_only_the_core() -> None:
    """Nothing of ``rerank_kit`` outside ``_core`` either: what it needs it defines itself."""
    graph = import_graph()
    outside = {
        module: sorted(t for t in targets if not (t == CORE or t.startswith(CORE + ".")))
        for module, targets in graph.items()
        if module == CORE or module.startswith(CORE + ".")
    }
    bad = {module: targets for module, targets in outside.items() if targets}
    assert not bad, f"rerank_kit._core imports modules outside it: {bad}"


@pytest.mark.parametrize("package", [PACKAGE])
def test_no_import_cycle(package: str) -> None:
    cycles = describe_cycles(import_graph())
    assert not cycles, f"import cycles in {package} (lazy imports included):\n" + "\n".join(cycles)


def test_evaluation_imports_nothing_of_learning() -> None:
    """``learning`` builds on ``evaluation``: no module of ``evaluation`` imports it.

    The package's ``__init__`` forwards ``tune``, ``train``, ... (its documented names) by a
    module ``__getattr__`` and names them for type checkers; ``learning`` imports only
    ``evaluation``'s modules, never that ``__init__``, so this makes no cycle.
    """
    graph = import_graph()
    back = {
        module: sorted(t for t in targets if t.startswith("rerank_kit.learning"))
        for module, targets in graph.items()
        if module.startswith("rerank_kit.evaluation.")
    }
    assert not {m: t for m, t in back.items() if t}, back
    into_init = sorted(
        module
        for module, targets in graph.items()
        if module.startswith("rerank_kit.learning") and "rerank_kit.evaluation" in targets
    )
    assert not into_init, f"learning imports evaluation's __init__: {into_init}"


def test_evaluation_still_offers_learnings_documented_names() -> None:
    import rerank_kit.evaluation as evaluation
    import rerank_kit.learning as learning

    for name in ("tune", "train", "bootstrap_ci", "TuneResult", "TrainResult"):
        assert getattr(evaluation, name) is getattr(learning, name)
        assert name in evaluation.__all__ and name in dir(evaluation)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        evaluation.nothing  # noqa: B018


ADAPTER_PACKAGES = tuple(
    p.name for p in sorted(ROOT.parent.glob("*_rerank_kit")) if (p / "__init__.py").is_file()
)


@pytest.mark.parametrize("package", ADAPTER_PACKAGES)
def test_adapter_packages_import_only_public_rerank_kit_names(package: str) -> None:
    engine = module_files()
    files = module_files(ROOT.parent / package, package)
    private = {}
    for name, path in files.items():
        source = path.read_text(encoding="utf-8")
        targets = imports_of(name, source, [*engine, *files], path.name == "__init__.py")
        bad = sorted(t for t in targets if t.startswith(PACKAGE + "._"))
        if bad:
            private[name] = bad
    assert not private, f"{package} imports private rerank_kit modules: {private}"
