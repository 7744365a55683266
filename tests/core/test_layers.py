"""The package's imports read one way: lower layers never import higher ones, and no module imports itself back.

Every import of the package is read from the source (ast): at module level and inside functions alike. Only
``if TYPE_CHECKING:`` blocks are left out (they never run). An import inside a function must say why on its line
(a ``#`` comment: an optional dependency, or a heavy import kept off the CLI's start). The emulator stands in
for Microsoft and is its own program: it must not import the extension, and its own insides are not checked here.
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = "flask_pbx365"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: The layers, lowest first. A module belongs to the first rule that names it: its exact name, then a ``*.suffix``
#: (the last part of its name), then its top-level folder. The emulator and the pytest plugin stand apart: the
#: emulator imports nothing of the extension, the plugin only the emulator.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("_version", "exceptions", "config", "signals", "host", "clouds", "crypto", "models", "feature",
                    "routing", "state", "csrf", "migrate", "sqlite", "rows")),
    ("stored configuration", ("tenants", "keys", "settings", "redirects", "oauth")),
    ("graph client", ("graph", "connection")),
    ("run machinery", ("runs",)),
    ("engines", ("users", "contacts", "presence", "teams_presence", "mail", "sso", "notifications")),
    ("views, CLI and jobs", ("*.tab", "*.jobs", "sso.routes", "notifications.webhook", "views", "cli", "scheduler",
                             "health")),
    ("features", ("*.feature", "features")),
    ("extension", ("extension", "")),
    ("host-adapter conformance kit", ("conformance",)),
]
APART = ("emulator", "testing")


def layer_of(module: str) -> int | None:
    """Index into :data:`LAYERS` of a module named relative to the package (``""`` is the package itself)."""
    parts = module.split(".") if module else [""]
    for exact in (True, False, None):
        for index, (_, rules) in enumerate(LAYERS):
            for rule in rules:
                if exact is True and rule == module:
                    return index
                if exact is False and rule.startswith("*.") and parts[-1] == rule[2:] and len(parts) > 1:
                    return index
                if exact is None and not rule.startswith("*.") and rule == parts[0]:
                    return index
    return None


def modules(root: Path) -> dict[str, Path]:
    """Module name (relative, ``""`` for the package) -> file."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, bool, int, str]]:
    """``(imported module, inside a function, line, source line)`` for each import of the package in ``path``."""
    source = path.read_text()
    lines = source.splitlines()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool, int, str]] = []

    def statement(node: ast.stmt) -> str:
        return "\n".join(lines[node.lineno - 1:node.end_lineno])

    def target_of(node: ast.ImportFrom) -> str | None:
        if node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            return ".".join([*base, *([node.module] if node.module else [])])
        if node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
            return node.module[len(PACKAGE) + 1:]
        return None

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        found.append((alias.name[len(PACKAGE) + 1:], inside, child.lineno, statement(child)))
            elif isinstance(child, ast.ImportFrom):
                target = target_of(child)
                if target is not None:
                    for alias in child.names:
                        full = f"{target}.{alias.name}" if target else alias.name
                        found.append((full if full in known else target, inside, child.lineno, statement(child)))
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


def check(root: Path) -> list[str]:
    """Every breach of the rules in the package at ``root``, as readable lines."""
    mods = modules(root)
    known = set(mods)
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in sorted(mods.items()):
        if name.split(".")[0] == "emulator":  # Microsoft's stand-in: checked only for importing the extension
            for target, _, line, _ in imports_of(name, path, known):
                if target.split(".")[0] != "emulator":
                    problems.append(f"{PACKAGE}.{name} (line {line}): the emulator imports {target}")
            continue
        for target, inside, line, text in imports_of(name, path, known):
            where = f"{PACKAGE}.{name}".rstrip(".") + f" (line {line})"
            graph[name].add(target)
            # Importing a submodule runs its package's __init__ first: that is an import of the package too.
            parent = target.rpartition(".")[0]
            while parent and parent != name and not name.startswith(parent + "."):
                graph[name].add(parent)
                parent = parent.rpartition(".")[0]
            if inside and "#" not in text:
                problems.append(f"{where}: import inside a function without a '# reason': {text.strip()}")
            top = name.split(".")[0]
            if top in APART or target.split(".")[0] in APART:
                if top == "testing" and target.split(".")[0] == "emulator" or top == target.split(".")[0]:
                    continue
                problems.append(f"{where}: {name or PACKAGE} and {target} must not import each other")
                continue
            mine, theirs = layer_of(name), layer_of(target)
            if mine is None or theirs is None:
                problems.append(f"{where}: {name if mine is None else target} is in no layer of LAYERS")
            elif theirs > mine:
                problems.append(f"{where}: {name or PACKAGE} ({LAYERS[mine][0]}) imports {target} "
                                f"({LAYERS[theirs][0]}), a higher layer")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph or nxt == node:
                continue
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    result = []
    for group in groups:
        members = set(group)
        path, node = [], sorted(group)[0]
        while node not in path:
            path.append(node)
            node = next(n for n in sorted(graph[node]) if n in members)
        result.append([(f"{PACKAGE}.{m}" if m else PACKAGE) for m in path[path.index(node):] + [node]])
    return result


def test_layers_and_cycles():
    problems = check(ROOT)
    assert not problems, "\n".join(problems)


def test_every_module_has_a_layer():
    assert [m for m in modules(ROOT) if layer_of(m) is None and m.split(".")[0] not in APART] == []


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_planted_cycle_fails(tmp_path):
    root = _plant(tmp_path, {"__init__.py": "", "tenants.py": "from .settings import schema\n",
                             "settings.py": "def schema():\n    from .tenants import x  # lazy\n"})
    assert any(p.startswith("import cycle:") and "tenants" in p and "settings" in p for p in check(root))


def test_an_import_of_a_higher_layer_fails_even_inside_a_function(tmp_path):
    root = _plant(tmp_path, {"__init__.py": "", "runs/__init__.py": "",
                             "runs/lifecycle.py": "def f():\n    from ..scheduler import run_once  # dodge\n",
                             "scheduler.py": ""})
    assert any("imports scheduler (views, CLI and jobs), a higher layer" in p for p in check(root))


def test_an_import_inside_a_function_needs_its_reason(tmp_path):
    root = _plant(tmp_path, {"__init__.py": "", "state.py": "", "migrate.py": "def f():\n    from .state import x\n"})
    assert check(root) == [f"{PACKAGE}.migrate (line 2): import inside a function without a '# reason': "
                           "from .state import x"]


@pytest.mark.parametrize("module, layer", [("users.engine", "engines"), ("users.tab", "views, CLI and jobs"),
                                           ("users.feature", "features"), ("runs.lifecycle", "run machinery"),
                                           ("graph.client", "graph client"), ("", "extension")])
def test_layer_table(module, layer):
    assert LAYERS[layer_of(module)][0] == layer
