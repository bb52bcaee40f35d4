"""Every "(notebook NN)" tag in the package and in docs/architecture.md is true: notebook NN uses that module
(imports it, or a dclab module that imports it)."""
from __future__ import annotations

import ast
import re

from conftest import NOTEBOOKS, ROOT
from test_layering import import_graph, module_files

TAG = re.compile(r"\(notebooks? ([0-9][0-9, and-]*)")


def _imported(source: str, known: set[str]) -> set[str]:
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dclab":
            base = node.module.removeprefix("dclab").lstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}".lstrip(".")
                found.add(sub if sub in known else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("dclab").lstrip(".") for a in node.names if a.name.split(".")[0] == "dclab"}
    return found


def modules_used_by_notebooks() -> dict[str, set[str]]:
    """``{"02": {"prune", "widgets.pruning", ... and everything those import}}``."""
    import nbformat

    graph, _ = import_graph()
    known = set(module_files())
    used = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        stack = [m for c in nb.cells if c.cell_type == "code" for m in _imported(c.source, known)]
        seen: set[str] = set()
        while stack:
            module = stack.pop()
            if module not in seen:
                seen.add(module)
                stack.extend(graph.get(module, ()))
        # using dclab.algorithms.prune is using the package dclab.algorithms too
        used[path.name[:2]] = seen | {m.rsplit(".", k)[0] for m in seen for k in range(1, m.count(".") + 1)}
    return used


def test_module_tags_name_notebooks_that_use_the_module():
    used = modules_used_by_notebooks()
    wrong = [f"dclab.{module} says notebook {nn}, which does not use it"
             for module, path in module_files().items()
             for tag in TAG.findall(path.read_text()) for nn in re.findall(r"\d\d", tag)
             if module not in used.get(nn, set())]
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_architecture_doc_tags_are_true():
    used = modules_used_by_notebooks()
    doc = (ROOT / "docs" / "architecture.md").read_text()
    wrong = []
    for bullet in re.split(r"\n(?=- )", doc):  # one bullet per module: "- `dclab.algorithms.prune` ... (notebook 02)"
        head = re.match(r"- `dclab\.([\w.]+)`", bullet)
        if head:
            for tag in TAG.findall(bullet):
                wrong += [f"{head.group(1)}: notebook {nn}" for nn in re.findall(r"\d\d", tag)
                          if head.group(1) not in used.get(nn, set())]
    assert not wrong, "docs/architecture.md tags a module with a notebook that does not use it:\n" + "\n".join(wrong)
