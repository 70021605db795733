"""The packages of s2s depend on each other in one direction, with no cycles.

config -> data -> models -> (checkpoint, device) -> decode -> train -> cli: a module
may import from its own layer or a lower one, never a higher one, and the module
graph (imports inside functions included) has no cycle. A new top-level module must
be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "s2s"

# Lowest first. A name stands for that module or package and everything under it.
LAYERS: list[tuple[str, ...]] = [
    ("s2s.errors", "s2s.atomic", "s2s._version"),
    ("s2s.config", "s2s.config_sections", "s2s.config_yaml"),
    ("s2s.data",),
    ("s2s.models",),
    ("s2s.checkpoint", "s2s.device", "s2s.memory", "s2s.precision", "s2s.metrics"),
    ("s2s.info",),
    ("s2s.decode", "s2s.viz", "s2s.export"),
    ("s2s.train",),
    ("s2s.cli", "s2s.cli_decode", "s2s.cli_inspect", "s2s.cli_prep", "s2s.__main__"),
    ("s2s",),  # the package itself: the Python API's facade (s2s.Translator, ...)
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _layer(module: str) -> int:
    best, best_len = None, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            matches = module == name or module.startswith(name + ".")
            if matches and len(name) > best_len:
                best, best_len = i, len(name)
    assert best is not None, f"{module}: give it a layer in tests/test_imports.py"
    return best


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every s2s module `module` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = module.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from s2s.x import y` imports the module s2s.x.y when there is one.
            names = [f"{base}.{a.name}" for a in node.names]
            names = [n if n in known else base for n in names]
        else:
            continue
        for name in names:
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                out.add(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_every_import_points_down_the_layers():
    back = [
        f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
        for m, deps in sorted(_graph().items())
        for d in sorted(deps)
        if _layer(d) > _layer(m)
    ]
    assert not back, "imports against the package order:\n" + "\n".join(back)


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ importing its own submodules is not a cycle of interest.
    graph = {
        m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()
    }
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d) :], d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_a_back_edge(tmp_path):
    """The parser resolves relative and function-level imports (a self-check)."""
    pkg = tmp_path / "s2s" / "data"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text(
        "def f():\n    from ..train import trainer\n    from s2s.models import y\n"
    )
    known = {"s2s", "s2s.data", "s2s.data.x", "s2s.train", "s2s.train.trainer"}
    known |= {"s2s.models"}
    deps = _imports("s2s.data.x", pkg / "x.py", known)
    assert deps == {"s2s.train.trainer", "s2s.models"}
    assert _layer("s2s.train.trainer") > _layer("s2s.data.x")
