"""The project's import graph, read from the code (ast, imports inside functions too), and the
layout's rules checked on it (tests/test_layout.py)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("experiments", "lightning_modules", "datamodules", "hydra_plugins", "benchmarks", "tests")
# experiments/: each layer may import the layers before it, never one after it.
LAYERS = ("experiments.config", "experiments.runs", "experiments.sweeps", "experiments.pipeline")
ENTRY_POINTS = ("run", "evaluate", "predict", "export", "screenshots")
HEAVY = ("torch", "torchvision", "torchmetrics", "lightning", "optuna")  # never imported by config/ at load


@dataclass
class Graph:
    modules: dict[str, Path]
    imports: dict[str, set[str]] = field(default_factory=dict)  # module -> project modules it imports
    top_level: dict[str, set[str]] = field(default_factory=dict)  # module -> top packages imported at load


def read_graph(root: Path) -> Graph:
    modules = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = Graph(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        graph.imports[name], graph.top_level[name] = set(), set()
        for node in ast.walk(tree):
            for imported in _names(node, name, is_package):
                target = _project_module(imported, modules)
                if target and target != name:
                    graph.imports[name].add(target)
        for node in tree.body:  # what loading the module imports
            for imported in _names(node, name, is_package):
                graph.top_level[name].add(imported.split(".")[0])
    return graph


def _names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(parts[: len(parts) - (node.level - 1)] + ([base] if base else []))
        return [f"{base}.{a.name}" for a in node.names] + [base]
    return []


def _project_module(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (a package and its own submodules,
    which a package's __init__ re-exports, do not count)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.imports[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph.imports:
        if v not in index:
            visit(v)
    return [c for c in found if not all(a.startswith(b + ".") or b.startswith(a + ".") for a in c for b in c if a != b)]


def layer_of(module: str) -> int | None:
    """The layer of an experiments module (entry points: after every layer); None outside them."""
    if module in {f"experiments.{e}" for e in ENTRY_POINTS}:
        return len(LAYERS)
    return next((i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")), None)


def broken_rules(graph: Graph) -> list[str]:
    """Every import that breaks the layout's rules, in words."""
    problems = [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    for module, targets in sorted(graph.imports.items()):
        top = module.split(".")[0]
        for target in sorted(targets):
            if top in ("lightning_modules", "datamodules") and target.startswith("experiments"):
                problems.append(f"{module} imports {target}: lightning_modules/ and datamodules/ never import experiments/")
            if target.split(".")[0] == "tests" and top != "tests":
                problems.append(f"{module} imports {target}: nothing outside tests/ imports tests/")
            mine, theirs = layer_of(module), layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{module} imports {target}: {LAYERS[mine] if mine < len(LAYERS) else 'an entry point'} "
                                f"comes before {LAYERS[theirs] if theirs < len(LAYERS) else 'an entry point'}")
            if target == "experiments.dashboard" or target.startswith("experiments.dashboard."):
                if top == "experiments" and module not in ("experiments.screenshots",) and not module.startswith(
                        "experiments.dashboard"):
                    problems.append(f"{module} imports {target}: only experiments/screenshots.py (and tests) use the dashboard")
        if module.startswith("experiments.config"):
            heavy = sorted(graph.top_level[module] & set(HEAVY))
            if heavy:
                problems.append(f"{module} imports {', '.join(heavy)} when it loads: experiments/config/ stays light")
    return problems
