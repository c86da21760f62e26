"""A JSON document as a collapsible tree or as highlighted text; one key flips between them."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from widgets.format import json_text
from widgets.stored_text import stored

EXPAND_ALL_BELOW_NODES = 300


class JsonView(Widget):
    """Shows one JSON document; `show_tree` picks the tree or the text."""

    DEFAULT_CSS = """
    JsonView {
        height: 1fr;
        & > Tree { height: 1fr; background: $surface; }
        & > VerticalScroll { height: 1fr; background: $surface; }
        & > VerticalScroll > Static { width: 1fr; }
    }
    """

    show_tree: reactive[bool] = reactive(True)

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.document: Any = None
        self.text = ""

    def compose(self) -> ComposeResult:
        """A tree and a scrolling text view; only one is displayed."""
        tree: Tree[Any] = Tree("analysis", id="json-tree")
        tree.show_root = True
        yield tree
        with VerticalScroll(id="json-text"):
            yield Static(id="json-static", expand=True)

    def on_mount(self) -> None:
        """Hide the text view and follow the app's theme for highlighting."""
        self.query_one("#json-text").display = False
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._render_text())

    def update(self, document: Any, label: str = "analysis") -> None:
        """Show a new document."""
        document = reading_order(document)
        self.document = document
        self.text = json_text(document, indent=2)
        tree: Tree[Any] = self.query_one("#json-tree", Tree)
        tree.clear()
        tree.root.set_label(_branch_label(label, document))
        count = _add_children(tree.root, document)
        if count < EXPAND_ALL_BELOW_NODES:
            tree.root.expand_all()
        else:
            tree.root.expand()
        tree.move_cursor(tree.root)
        self._render_text()

    def watch_show_tree(self, show_tree: bool) -> None:
        """Display the chosen view and move focus with it."""
        tree = self.query_one("#json-tree")
        text = self.query_one("#json-text")
        had_focus = self.screen.focused in (tree, text) if self.is_mounted else False
        tree.display, text.display = show_tree, not show_tree
        if had_focus:
            (tree if show_tree else text).focus()

    def toggle(self) -> None:
        """Flip between the tree and the text."""
        self.show_tree = not self.show_tree

    def focus_view(self) -> None:
        """Focus whichever view is shown."""
        self.query_one("#json-tree" if self.show_tree else "#json-text").focus()

    def _render_text(self) -> None:
        dark = self.app.current_theme.dark
        syntax = Syntax(self.text, "json", theme="ansi_dark" if dark else "ansi_light",
                        word_wrap=True, background_color="default", line_numbers=False)
        self.query_one("#json-static", Static).update(syntax)


READ_FIRST = ("summary", "severity", "category")


def reading_order(document: Any, first: tuple[str, ...] = READ_FIRST) -> Any:
    """The document with the keys an analyst reads first (summary, severity, category) on
    top and the others in their stored order (stored analyses come back sorted by name)."""
    if not isinstance(document, dict):
        return document
    leading = [key for key in first if key in document]
    return {**{key: document[key] for key in leading},
            **{key: value for key, value in document.items() if key not in leading}}


def _branch_label(name: str, value: Any) -> Text:
    label = stored(name, "bold", one_line=True)
    if isinstance(value, dict | list) and not value:
        return Text.assemble(label, (": {}" if isinstance(value, dict) else ": []", "dim"))
    if isinstance(value, dict):
        return Text.assemble(label, (f"  {{{len(value)}}}", "dim"))
    if isinstance(value, list):
        return Text.assemble(label, (f"  [{len(value)}]", "dim"))
    style = "green" if isinstance(value, str) else "cyan" if value is not None else "dim"
    return Text.assemble(label, ": ", (json_text(value), style))


def _add_children(node: TreeNode[Any], value: Any) -> int:
    """Add the members of a dict or list under node; returns how many nodes were added."""
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return 0
    count = 0
    for key, child in items:
        if isinstance(child, dict | list) and child:
            branch = node.add(_branch_label(key, child), expand=False)
            count += 1 + _add_children(branch, child)
        else:
            node.add_leaf(_branch_label(key, child))
            count += 1
    return count

