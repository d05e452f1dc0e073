"""Notebooks without logic (DESIGN.md, Conventions): every notebook has one ``parameters`` cell,
no ``def`` or ``class`` and no lambda bound to a name in any code cell, no code cell over 15
lines besides its imports, and no outputs in git. The checker is tested on a crafted notebook."""
from __future__ import annotations

import ast

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from srlib.pipeline import list_notebooks

MAX_LINES = 15
NOTEBOOKS = list_notebooks()


def _tree(source: str) -> ast.Module:
    """The cell as Python (IPython magics such as ``%time`` or ``!ls`` turned into calls)."""
    return ast.parse(TransformerManager().transform_cell(source))


def logic_lines(source: str) -> int:
    """Non-blank, non-comment lines of a cell once its import statements are removed."""
    tree = _tree(source)
    imports = {n for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
               for n in range(node.lineno, node.end_lineno + 1)}
    code = TransformerManager().transform_cell(source).splitlines()
    return sum(1 for i, line in enumerate(code, 1)
               if i not in imports and line.strip() and not line.strip().startswith("#"))


def cell_problems(source: str) -> list[str]:
    """What in one code cell breaks the rules (empty when nothing does)."""
    try:
        tree = _tree(source)
    except SyntaxError as exc:
        return [f"does not parse: {exc.msg} (line {exc.lineno})"]
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "def"
            problems.append(f"defines {kind} {node.name!r} (line {node.lineno}); move it into srlib")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and isinstance(node.value, ast.Lambda):
            problems.append(f"binds a lambda to a name (line {node.lineno}); move the function into srlib")
    n = logic_lines(source)
    if n > MAX_LINES:
        problems.append(f"has {n} lines besides its imports (at most {MAX_LINES})")
    return problems


def notebook_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Every rule a notebook breaks, each naming the cell."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = [i for i, c in code if "parameters" in c.metadata.get("tags", [])]
    problems = [] if len(tagged) == 1 else [f"{len(tagged)} cells tagged 'parameters' (need exactly one)"]
    for i, c in code:
        if c.get("outputs") or c.get("execution_count") is not None:
            problems.append(f"cell {i} carries outputs or an execution count (strip them)")
        problems += [f"cell {i} {p}" for p in cell_problems(c.source)]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_logic(path):
    problems = notebook_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_logic_lines_skip_imports_blanks_and_comments():
    src = ("import torch\nfrom srlib.evaluate import (\n    evaluate,\n    summarize,\n)\n\n"
           "# a comment\nx = 1  # counted\n%time y = 2\n")
    assert logic_lines(src) == 2


def _bad_notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]}),
        v4.new_code_cell("for i in range(3):\n    def helper(x):\n        return x\n"),
        v4.new_code_cell("class Thing:\n    pass"),
        v4.new_code_cell("f = lambda s: s + 1\nok = sorted([2, 1], key=lambda v: -v)"),
        v4.new_code_cell("import os\n" + "".join(f"a{i} = {i}\n" for i in range(16))),
        v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        v4.new_markdown_cell("def in markdown is prose, not code"),
    ]
    nb.cells[1].outputs = [v4.new_output("stream", text="leftover")]
    return nb


def test_the_checker_catches_each_rule_on_a_crafted_notebook():
    problems = notebook_problems(_bad_notebook())
    assert "2 cells tagged 'parameters' (need exactly one)" in problems
    assert any(p.startswith("cell 1 carries outputs") for p in problems)
    assert any(p.startswith("cell 1 defines def 'helper' (line 2)") for p in problems)
    assert any(p.startswith("cell 2 defines class 'Thing'") for p in problems)
    assert [p for p in problems if p.startswith("cell 3")] == [
        "cell 3 binds a lambda to a name (line 1); move the function into srlib"]  # a key= lambda is fine
    assert "cell 4 has 16 lines besides its imports (at most 15)" in problems
    assert len(problems) == 6


def test_a_clean_notebook_passes():
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]}),
                v4.new_code_cell("import os\n" + "".join(f"a{i} = {i}\n" for i in range(15)))]
    assert notebook_problems(nb) == []
