"""dclab's layers (STYLE.md: core -> models/data/train -> pipeline/lessons -> viz -> widgets -> notebooks).

Read from the source (AST): every module is placed in a layer, none imports upward, there is no import
cycle and no private name is used across modules. Run for real: the core and the middle layers import
with plotly, ipywidgets and pandas absent, and the core without tqdm."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dclab"

# rank: a module may import modules of its own rank or lower, never higher
LAYERS = {
    0: ["errors", "deprecation", "cache", "memory", "paper", "hardware", "numformats",
        "algorithms", "algorithms.prune", "algorithms.quantize", "algorithms.lowrank", "algorithms.ternary",
        "codec", "codec.sparse", "codec.huffman", "codec.ans", "codec.container", "codec.entropy"],
    1: ["paths", "progress", "serve", "forkserver", "provisioner", "data", "models", "models.layers", "models.lenet", "models.squeezenet",
        "models.rnn", "models.reference", "train", "zoo"],
    2: ["pipeline", "pipeline.config", "pipeline.report", "pipeline.compress", "pipeline.ladder", "pipeline.staged", "pipeline.session",
        "pipeline.allocate", "pipeline.dsd", "pipeline.ternary",
        "lessons", "lessons.store", "lessons.pruning", "lessons.sharing", "lessons.coding", "lessons.squeezenet", "lessons.frontier",
        "lectures", "student", "exercises", "exercises._core", "exercises.numformats", "exercises.pruning",
        "exercises.sharing", "exercises.coding", "exercises.squeezenet"],
    3: ["viz", "viz.style", "viz.page", "viz.coding", "viz.dashboard", "viz.hardware", "viz.numformats", "viz.pruning",
        "viz.sharing", "viz.squeezenet", "viz.frontier", "viz.table"],
    4: ["widgets", "widgets.coding", "widgets.dashboard", "widgets.hardware", "widgets.numformats",
        "widgets.pruning", "widgets.progressive", "widgets.frontier", "widgets.retraining", "widgets.sharing", "widgets.squeezenet"],
    5: ["", "cli", "__main__"],
}
RANK = {name: rank for rank, names in LAYERS.items() for name in names}


def module_files() -> dict[str, Path]:
    """``{"models.lenet": path, "": dclab/__init__.py, ...}``."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Imports(ast.NodeVisitor):
    """dclab modules a module imports (at the top or inside functions; not under ``if TYPE_CHECKING``),
    and the private names it takes from them."""

    def __init__(self, name: str, is_package: bool, known: set[str]) -> None:
        self.package = name if is_package else name.rpartition(".")[0]
        self.known, self.modules, self.private, self.aliases = known, set(), set(), {}

    def _resolve(self, module: str | None, level: int) -> str | None:
        if level:
            base = self.package.split(".") if self.package else []
            base = base[: len(base) - level + 1] if level > 1 else base
            return ".".join([*base, *([module] if module else [])])
        if module == "dclab" or (module or "").startswith("dclab."):
            return module.removeprefix("dclab").lstrip(".")
        return None

    def visit_If(self, node: ast.If) -> None:
        for child in (node.orelse if _is_type_checking(node.test) else [*node.body, *node.orelse]):
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            target = self._resolve(alias.name, 0)
            if target is not None and target in self.known:
                self.modules.add(target)
                self.aliases[alias.asname or alias.name] = target

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._resolve(node.module, node.level)
        if base is None:
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}".lstrip(".")
            if sub in self.known:  # from dclab import pipeline
                self.modules.add(sub)
                self.aliases[alias.asname or alias.name] = sub
            elif base in self.known:
                self.modules.add(base)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    self.private.add(f"{base}.{alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                self.private.add(f"{self.aliases[node.value.id]}.{node.attr}")
        self.generic_visit(node)


def _subpackage(module: str) -> str | None:
    return module.partition(".")[0] if "." in module else None


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    files = module_files()
    graph, private = {}, {}
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py", set(files))
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.modules - {name}
        # modules of one subpackage may share their private names (dclab.exercises.*)
        private[name] = {p for p in visitor.private if _subpackage(name) is None
                         or _subpackage(name) != _subpackage(p.rpartition(".")[0])}
    return graph, private


def test_every_module_has_a_layer_and_every_expected_module_exists():
    found = set(module_files())
    assert found - set(RANK) == set(), "place the new module in LAYERS (which layer may it import?)"
    assert set(RANK) - found == set(), "a module this test expects is missing (moved or renamed?)"


def test_no_upward_import():
    graph, _ = import_graph()
    upward = [f"dclab.{a} (layer {RANK[a]}) imports dclab.{b} (layer {RANK[b]})"
              for a, targets in graph.items() for b in targets if RANK[b] > RANK[a]]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph, _ = import_graph()
    state: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            pytest.fail("import cycle: " + " -> ".join(f"dclab.{m}" if m else "dclab" for m in cycle))


def test_no_private_name_used_across_modules():
    _, private = import_graph()
    used = sorted(f"dclab.{a} uses dclab.{p}" for a, names in private.items() for p in names)
    assert not used, "make it public (or move the code):\n" + "\n".join(used)


BLOCKER = """
import importlib, sys
for name in ("plotly", "ipywidgets", "IPython", "anywidget", "voila", "pandas"):
    sys.modules[name] = None  # any import of these now fails
for module in sys.argv[1:]:
    importlib.import_module("dclab." + module if module else "dclab")
"""


def test_core_and_middle_layers_import_without_plotly_or_widgets():
    result = subprocess.run([sys.executable, "-c", BLOCKER, *LAYERS[0], *LAYERS[1], *LAYERS[2]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_core_does_not_import_tqdm():
    code = BLOCKER.replace('"pandas")', '"pandas", "tqdm", "tqdm.auto")')
    result = subprocess.run([sys.executable, "-c", code, *LAYERS[0]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
