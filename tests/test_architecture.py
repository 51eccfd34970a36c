"""The folder tree is the architecture: data flows one way, config -> runner -> stage -> table, and
nothing imports back up. Checked on the source (every import, at module level or inside a function)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("jobs", "udfs")
# Lower layers never import higher ones: udfs < jobs.core < the stages < jobs.runner < jobs.cli < jobs.run
LAYERS = {"udfs": 0, "jobs.core": 1, "stage": 2, "jobs.runner": 3, "jobs.cli": 4, "jobs.run": 5}
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py")}


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    sources = _sources()
    modules = set(sources)
    return {name: _imports(path, modules) - {name} for name, path in sources.items()}


def _layer(module: str) -> int:
    for prefix in ("jobs.runner", "jobs.cli", "jobs.run", "jobs.core", "udfs"):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    if module == "jobs":
        return LAYERS["jobs.core"]
    return LAYERS["stage"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(planted) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_nothing_imports_back_up():
    upward = sorted(f"{module} -> {target}" for module, targets in import_graph().items()
                    for target in targets if _layer(target) > _layer(module))
    assert upward == []


def test_stages_do_not_import_each_other():
    stages = {name for name in _sources() if _layer(name) == LAYERS["stage"] and name != "jobs"}
    assert stages == {"jobs.ingest", "jobs.dedup", "jobs.quality", "jobs.mix", "jobs.train", "jobs.maintain"}
    crossing = sorted(f"{module} -> {target}" for module in stages for target in import_graph()[module]
                      if target in stages)
    assert crossing == []


def test_udfs_never_touch_spark_or_storage():
    """The pure library: no pyspark, boto3 or jobs import anywhere in udfs/."""
    offenders = []
    for name, path in _sources().items():
        if name.startswith("udfs"):
            text = path.read_text(encoding="utf-8")
            offenders += [f"{name}: {word}" for word in ("pyspark", "boto3", "jobs.")
                          if re.search(rf"^\s*(from|import) {re.escape(word)}", text, re.MULTILINE)]
    assert offenders == []


def _long_functions() -> list[str]:
    """Functions in jobs/ over MAX_FUNCTION_LINES lines whose docstring does not say why."""
    found = []
    for name, path in _sources().items():
        if not name.startswith("jobs"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                reason = "long because" in (ast.get_docstring(node) or "")
                if length > MAX_FUNCTION_LINES and not reason:
                    found.append(f"{name}.{node.name}: {length} lines")
    return found


def test_functions_fit_on_a_screen():
    assert _long_functions() == []


@pytest.mark.parametrize("module", ["jobs.runner", "jobs.cli"])
def test_entry_modules_exist(module):
    assert module in _sources()
