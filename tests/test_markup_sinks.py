"""No built string reaches a markup sink: stored text goes through widgets.stored_text instead.

Textual and Rich parse a plain str given to Static, Label, DataTable.add_row, Option, a Tree
label, a border title or Text.from_markup as markup, so a title of `[/]` crashes the screen
and `[@click=app.quit]` becomes an action. Literal strings are the author's markup and fine;
an f-string, a concatenation or a .format() call carries data, and must be wrapped in
`stored()` (or Text) first. The pilot tests in tests/tui/test_hostile_text.py check the result
on screen; this scan catches the pattern before it gets there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SINK_CALLS = {"Static", "Label", "Button", "Option", "update", "add_row", "add_column",
              "add_columns", "set_label", "add_leaf", "add", "from_markup", "Tree", "Content",
              "Selection"}
SINK_ATTRIBUTES = {"border_title", "border_subtitle"}
MARKUP_KEYWORDS = {None, "prompt", "content", "renderable"}
LABEL_CALLS = {"Tree", "add", "add_leaf", "set_label", "Button", "Label"}
# A line that builds markup on purpose from the author's own text says so with this comment.
TRUSTED = "# trusted markup"


def built_string(node: ast.expr) -> bool:
    """An f-string, a str concatenation or %-format, or a .format() call."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return any(isinstance(side, ast.Constant | ast.JoinedStr) and
                   isinstance(getattr(side, "value", ""), str) for side in (node.left, node.right))
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("format", "join"))


def call_name(node: ast.Call) -> str:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return node.func.id if isinstance(node.func, ast.Name) else ""


def offences(source: str) -> list[tuple[int, str]]:
    """(line, sink) of every built string handed to a markup sink in source."""
    found = []
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and call_name(node) in SINK_CALLS:
            keywords = MARKUP_KEYWORDS | ({"label"} if call_name(node) in LABEL_CALLS else set())
            arguments = [*node.args, *(k.value for k in node.keywords if k.arg in keywords)]
            found += [(node.lineno, call_name(node)) for arg in arguments if built_string(arg)
                      and TRUSTED not in lines[node.lineno - 1]]
        elif isinstance(node, ast.Assign) and built_string(node.value):
            found += [(node.lineno, target.attr) for target in node.targets
                      if isinstance(target, ast.Attribute) and target.attr in SINK_ATTRIBUTES]
    return found


def test_no_built_string_reaches_a_markup_sink() -> None:
    offenders = [f"{path.relative_to(REPO_ROOT)}:{line} {sink}"
                 for folder in ("tui", "widgets")
                 for path in sorted((REPO_ROOT / folder).rglob("*.py"))
                 if path.name not in ("cli.py",) and not path.name.startswith("cli_")
                 for line, sink in offences(path.read_text())]
    assert offenders == []


@pytest.mark.parametrize("source", [
    'Static(f"{title}")',
    'label.update("row " + title)',
    'table.add_row(name, "{}".format(title))',
    'Option(prompt=f"{hit.title}")',
    'tree.root.add(label=f"{key}")',
    'self.border_title = f"Analyses ({count})"',
    'Text.from_markup(" · ".join(parts))',
])
def test_the_scan_sees_each_unsafe_pattern(source: str) -> None:
    assert offences(source)


@pytest.mark.parametrize("source", [
    'Static("[b]Keys[/b]")',
    'Static(stored(f"{title}"))',
    'Static(HELP.format(count=count))  # trusted markup: the count is a number',
    'view.update(document, label=f"{model} analysis")',
    'table.add_row(stored(name), f"{calls:,}" if False else stored(x))',
    'self.border_title = Text(f"Analyses ({count})")',
])
def test_the_scan_lets_safe_forms_pass(source: str) -> None:
    assert offences(source) == []
