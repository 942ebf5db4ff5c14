"""The package's architecture: layers whose dependencies point one way, and no import cycle.

The layers, bottom to top (``docs/architecture.md`` draws them):

* the runtime, the top-level modules of ``altametris.sara.core``: what a trainer imports;
* ``core.discovery``: plugins by name;
* ``core.config``: configs, which name plugins;
* ``core.testing`` and ``core.cli``: the testing kit and the command, side by side, neither importing the other.

The built-in plugins (``altametris.sara.plugins``) are ordinary plugins, and the bridges
(``altametris.sara.integrations``) drive a manager as any trainer does: both import public modules of the core only.
Read from the sources (every ``import`` statement, also inside functions; type-only imports under
``TYPE_CHECKING`` aside), then checked for real: every module imports first in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import NamedTuple

import altametris.sara.core
import altametris.sara.integrations
import altametris.sara.plugins
import pytest

CORE = "altametris.sara.core"
PLUGINS = "altametris.sara.plugins"
INTEGRATIONS = "altametris.sara.integrations"
PAGE = Path(__file__).parent.parent / "docs" / "architecture.md"

LAYERS = {"runtime": 0, "discovery": 1, "config": 2, "testing": 3, "cli": 3}

# The deliberate exceptions, each with its reason; any other upward or function-level import fails the tests below.
UPWARD = {
    (f"{CORE}._manager", f"{CORE}.config"): "CallbackManager.from_config(), the seed API's convenience "
    "constructor, imports the config layer when it is called",
    (f"{CORE}.__main__", f"{CORE}.cli"): "`python -m altametris.sara.core` runs the command",
    (f"{CORE}.order", f"{CORE}.discovery"): "a declared order names plugins: a callback made in code is named by the "
    "plugin its class is registered under, read from the installed metadata only when some callback declares an order",
}
IN_FUNCTIONS = {
    **UPWARD,
    (f"{CORE}.cli", f"{CORE}.cli.demo"): "the demo's training imports csv, json and logging: only when it runs",
    (f"{CORE}._manager", f"{CORE}.profiling"): "timings are opt-in: a manager imports the profiler when it turns "
    "them on, so that `import altametris.sara.core` does not pay for it",
    (f"{CORE}._manager", f"{CORE}.triggers"): "triggers are opt-in: imported with the first `when=`",
    (f"{CORE}.testing._pytest_plugin", f"{CORE}.testing"): "the pytest plugin is loaded into every pytest run of an "
    "environment that has SARA: it imports the kit when a test asks for a fixture",
}


class Import(NamedTuple):
    importer: str
    imported: str
    line: int
    in_function: bool


def _modules(package: object) -> dict[str, Path]:
    root = Path(package.__file__).parent  # type: ignore[attr-defined]
    name = package.__name__  # type: ignore[attr-defined]
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((name, *parts))] = path
    return found


MODULES = {
    **_modules(altametris.sara.core),
    **_modules(altametris.sara.plugins),
    **_modules(altametris.sara.integrations),
}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _resolve(importer: str, node: ast.ImportFrom, path: Path) -> list[str]:
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    if node.level:
        base = package.rsplit(".", maxsplit=node.level - 1)[0] if node.level > 1 else package
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    targets = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    return targets or [base]


def _imports() -> list[Import]:
    found = []
    for importer, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = _type_checking_lines(tree)
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inside = {line for node in functions for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
        for node in ast.walk(tree):
            if node.lineno in typing_only if isinstance(node, (ast.Import, ast.ImportFrom)) else True:
                continue
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else _resolve(importer, node, path)
            )
            for name in names:
                if name.startswith("altametris.sara"):
                    found.append(Import(importer, _owner(name), node.lineno, node.lineno in inside))
    return found


def _owner(name: str) -> str:
    """The module an imported name lives in: ``a.b.c`` if it is a module, else its package."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _layer(module: str) -> str:
    inner = module[len(CORE) + 1 :].split(".", maxsplit=1)[0] if module.startswith(f"{CORE}.") else ""
    return inner if inner in LAYERS else "runtime"


IMPORTS = _imports()


def test_the_sources_were_read() -> None:
    assert f"{CORE}.discovery._signature" in MODULES
    assert any(item.imported == f"{CORE}._callback" for item in IMPORTS)


def test_core_dependencies_point_one_way() -> None:
    wrong = [
        f"{item.importer}:{item.line} imports {item.imported} ({_layer(item.importer)} -> {_layer(item.imported)})"
        for item in IMPORTS
        if item.importer.startswith(CORE)
        and item.imported.startswith(CORE)
        and (item.importer, _owner(item.imported)) not in UPWARD
        and (
            LAYERS[_layer(item.imported)] > LAYERS[_layer(item.importer)]
            or (_layer(item.importer) != _layer(item.imported) and LAYERS[_layer(item.imported)] == 3)
        )
    ]
    assert not wrong, "\n".join(wrong)


def test_the_package_imports_its_own_modules_at_the_top_of_each_module() -> None:
    inside = [
        f"{item.importer}:{item.line} imports {item.imported} inside a function"
        for item in IMPORTS
        if item.in_function and item.imported != item.importer and (item.importer, item.imported) not in IN_FUNCTIONS
    ]
    assert not inside, "\n".join(inside)


def test_the_exceptions_are_still_needed() -> None:
    used = {(item.importer, item.imported) for item in IMPORTS}
    assert set(IN_FUNCTIONS) <= used, set(IN_FUNCTIONS) - used


def test_module_level_imports_form_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for item in IMPORTS:
        if not item.in_function and item.imported != item.importer:
            graph.setdefault(item.importer, set()).add(item.imported)
    # A package's __init__ that re-exports its own submodules is the facade, not a cycle: skip edges into a parent.
    for importer, imported in [(a, b) for a, targets in graph.items() for b in targets]:
        if importer.startswith(f"{imported}."):
            graph[importer].discard(imported)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("package", [PLUGINS, INTEGRATIONS])
def test_builtin_plugins_and_bridges_use_only_the_public_core(package: str) -> None:
    private = [
        f"{item.importer}:{item.line} imports {item.imported}"
        for item in IMPORTS
        if item.importer.startswith(package)
        and item.imported.startswith(CORE)
        and any(part.startswith("_") for part in item.imported.split("."))
    ]
    assert not private, "\n".join(private)


def test_the_core_knows_no_plugin_and_no_bridge() -> None:
    assert not [
        item for item in IMPORTS if item.importer.startswith(CORE) and item.imported.startswith((PLUGINS, INTEGRATIONS))
    ]


def _runtime_order() -> list[str]:
    """The runtime's modules as the architecture page lists them, in its order."""
    text = PAGE.read_text(encoding="utf-8")
    table = text[text.index("The runtime, in dependency order") : text.index("The subpackages")]
    names = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    return [CORE if name == "__init__" else f"{CORE}.{name}" for name in names]


def test_each_runtime_module_imports_only_those_above_it_on_the_architecture_page() -> None:
    order = _runtime_order()
    position = {module: index for index, module in enumerate(order)}
    runtime = {module for module in MODULES if module.startswith(CORE) and _layer(module) == "runtime"}
    assert runtime - {f"{CORE}.__main__"} == set(order)
    wrong = [
        f"{item.importer}:{item.line} imports {item.imported}, listed below it"
        for item in IMPORTS
        if not item.in_function
        and item.importer in position
        and item.imported in position
        and item.imported != item.importer
        and position[item.imported] > position[item.importer]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(name for name in MODULES if not name.endswith("__main__")))
def test_every_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    framework = module.rpartition(".")[2]
    if module.startswith(f"{INTEGRATIONS}.") and not framework.startswith("_") and not find_spec(framework):
        pytest.skip(f"{framework} is installed in tox -e bridges")
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_architecture_page_names_every_module_of_the_core() -> None:
    text = PAGE.read_text(encoding="utf-8")
    missing = []
    for module, path in MODULES.items():
        if not module.startswith(CORE) or module.endswith("__main__"):
            continue
        inner = path.relative_to(Path(altametris.sara.core.__file__).parent).with_suffix("").as_posix()
        if f"`{inner}`" not in text:
            missing.append(inner)
    assert not missing, f"docs/architecture.md does not describe: {missing}"
