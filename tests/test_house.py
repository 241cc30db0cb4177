"""One direction through tasks/ (README, "Where things live"): the @task
modules on top, then steps, kinds, services, model, support. Read from the
sources with ast, so imports inside functions and lazy.module("tasks.x")
bindings count as much as the ones at the top of a file."""

import ast
import re
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parent.parent / "tasks"
# Highest first; a module may import its own layer and the ones below.
LAYERS = ("tasks", "steps", "kinds", "services", "model", "support")
MODULE_NAME = re.compile(r"tasks(\.\w+)+")


def module_name(path):
    parts = path.relative_to(TASKS).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("tasks",) + parts)


def is_package(path):
    return path.name == "__init__.py"


def imported(path):
    """Every tasks.* module the file imports (absolute names), anywhere in it."""
    name = module_name(path)
    package = name if is_package(path) else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("tasks"):
                continue
            for alias in node.names:
                # `from tasks.steps import lock` names a module; `from .base import Target` a name in one.
                candidate = f"{module}.{alias.name}"
                found.add(candidate if exists(candidate) else module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tasks.")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.add(node.value)   # lazy.module("tasks.services.compute")
    return found - {"tasks"}


def exists(module):
    rel = Path(*module.split(".")[1:]) if "." in module else Path()
    return (TASKS / rel).with_suffix(".py").is_file() or (TASKS / rel / "__init__.py").is_file()


def layer_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else "tasks"


def rank(module):
    return LAYERS.index(layer_of(module))


def graph():
    return {module_name(p): imported(p) for p in sorted(TASKS.rglob("*.py"))}


def test_the_reader_sees_every_kind_of_import(tmp_path):
    """The checks below are only as good as imported(): it must see relative
    imports at any depth, imports inside functions and lazy bindings."""
    files = {module_name(p): imported(p) for p in TASKS.rglob("*.py")}
    assert "tasks.kinds.base" in files["tasks.kinds.legacy"]          # from .base import ...
    assert "tasks.support.lazy" in files["tasks.steps.teardown"]      # from ..support import lazy, progress
    assert "tasks.services.objects" in files["tasks.steps.teardown"]  # lazy.module("tasks.services.objects")
    assert "tasks.services.compute" in files["tasks.services.session"]  # inside a function (Cloud.compute)


def test_every_import_points_down_or_sideways():
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if exists(b) and rank(b) < rank(a))
    assert upward == []


def test_task_modules_never_import_each_other():
    g = graph()
    tops = {m for m in g if layer_of(m) == "tasks"}
    assert sorted(f"{a} -> {b}" for a in tops for b in g[a] if b in tops and b != a) == []


def test_no_cycles():
    g = {m: {t for t in targets if t in graph_modules()} for m, targets in graph().items()}
    # A package's __init__ importing its own modules lazily is still a cycle; none allowed.
    seen, stack, cycles = set(), [], []

    def visit(m, on_path):
        if m in on_path:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        on_path.add(m)
        stack.append(m)
        for t in sorted(g[m]):
            visit(t, on_path)
        stack.pop()
        on_path.discard(m)

    for m in sorted(g):
        visit(m, set())
    assert cycles == []


def graph_modules():
    return {module_name(p) for p in TASKS.rglob("*.py")}


def room(module):
    """A layer's package is one room; each @task module is a room of its own."""
    return module if layer_of(module) == "tasks" else "tasks." + layer_of(module)


def test_at_most_seven_floors():
    """Floors of the house drawn room by room: the longest chain of imports
    between rooms (a room's own modules importing each other add none)."""
    g = {}
    for m, targets in graph().items():
        g.setdefault(room(m), set()).update(room(t) for t in targets if t in graph_modules() and room(t) != room(m))
    depth = {}

    def floor(r, path=()):
        if r in path:   # a cycle: test_no_cycles names it
            return 0
        if r not in depth:
            depth[r] = 1 + max((floor(t, path + (r,)) for t in g[r]), default=0)
        return depth[r]

    assert max(floor(r) for r in g) <= 7, depth


@pytest.mark.parametrize("layer", LAYERS[1:])
def test_each_layer_is_a_package(layer):
    assert (TASKS / layer / "__init__.py").is_file()
