"""A JSON document as a collapsible tree or as highlighted text; one key flips between them."""

from __future__ import annotations

import re
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
        self.query_text = ""
        self.match_index = 0
        self._labels: dict[int, Text] = {}
        self._tree_matches: list[TreeNode[Any]] = []
        self._text_matches: list[tuple[int, int]] = []

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

    def update(self, document: Any, label: str = "analysis",
               key_order: tuple[str, ...] = ()) -> None:
        """Show a new document, top-level keys in `key_order` if given, else in reading order."""
        document = reading_order(document, key_order or READ_FIRST)
        self.document = document
        self.text = json_text(document, indent=2)
        tree: Tree[Any] = self.query_one("#json-tree", Tree)
        tree.clear()
        tree.root.set_label(_branch_label(label, document))
        self._labels = {}
        self._tree_matches, self._text_matches = [], []
        count = _add_children(tree.root, document)
        self._labels = {node.id: Text(node.label) if isinstance(node.label, str) else node.label
                        for node in _walk(tree.root)}
        if count < EXPAND_ALL_BELOW_NODES:
            tree.root.expand_all()
        else:
            tree.root.expand()
        tree.move_cursor(tree.root)
        if self.query_text:
            self.search(self.query_text)
        else:
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

    def expand_all(self) -> None:
        """Open every branch of the tree."""
        self.query_one("#json-tree", Tree).root.expand_all()

    def collapse_all(self) -> None:
        """Close every branch below the root (the top-level keys stay listed)."""
        tree: Tree[Any] = self.query_one("#json-tree", Tree)
        tree.root.collapse_all()
        tree.root.expand()
        tree.move_cursor(tree.root)

    @property
    def match_count(self) -> int:
        """How many matches of the search the shown view holds."""
        return len(self._tree_matches if self.show_tree else self._text_matches)

    def search(self, query: str) -> int:
        """Highlight every case-insensitive match of `query`, go to the first; returns the count."""
        self.query_text = query
        self.match_index = 0
        # One case-insensitive rule for the tree, the text and the highlight (highlight_words uses
        # re too): str.lower() can change a string's length and shift columns.
        pattern = re.compile(re.escape(query), re.IGNORECASE) if query else None
        tree: Tree[Any] = self.query_one("#json-tree", Tree)
        self._tree_matches = []
        for node in _walk(tree.root):
            original = self._labels.get(node.id) or Text(str(node.label))
            if pattern is not None and pattern.search(original.plain):
                shown = original.copy()
                shown.highlight_words([query], MATCH_STYLE, case_sensitive=False)
                node.set_label(shown)
                self._tree_matches.append(node)
            elif node.label is not original:
                node.set_label(original)
        self._text_matches = text_positions(self.text, query) if query else []
        self.go_to_match(0)
        return self.match_count

    def clear_search(self) -> None:
        """Remove the highlights of the search."""
        self.search("")

    def go_to_match(self, delta: int) -> None:
        """Move `delta` matches on (wrapping) in the shown view and put the cursor there."""
        if self.match_count:
            self.match_index = (self.match_index + delta) % self.match_count
        if self.show_tree and self._tree_matches:
            node = self._tree_matches[self.match_index]
            parent = node.parent
            while parent is not None:
                parent.expand()
                parent = parent.parent
            tree: Tree[Any] = self.query_one("#json-tree", Tree)
            # Expanding drops the tree's line cache; reading last_line rebuilds it, so node.line
            # is current before the cursor moves there.
            _ = tree.last_line
            tree.move_cursor(node)
        self._render_text()
        if not self.show_tree and self._text_matches:
            line = self._text_matches[self.match_index][0]
            self.query_one("#json-text", VerticalScroll).scroll_to(y=max(0, line - 3),
                                                                   animate=False)

    def _render_text(self) -> None:
        dark = self.app.current_theme.dark
        syntax = Syntax(self.text, "json", theme="ansi_dark" if dark else "ansi_light",
                        word_wrap=True, background_color="default", line_numbers=False)
        width = len(self.query_text)
        for index, (line, column) in enumerate(self._text_matches):
            style = CURRENT_MATCH_STYLE if index == self.match_index else MATCH_STYLE
            syntax.stylize_range(style, (line + 1, column), (line + 1, column + width))
        self.query_one("#json-static", Static).update(syntax)


READ_FIRST = ("summary", "severity", "category")
MATCH_STYLE = "black on yellow"
CURRENT_MATCH_STYLE = "black on dark_orange"


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


def _walk(node: TreeNode[Any]) -> list[TreeNode[Any]]:
    """The node and every node below it, in display order."""
    nodes = [node]
    for child in node.children:
        nodes.extend(_walk(child))
    return nodes


def text_positions(text: str, query: str) -> list[tuple[int, int]]:
    """(line, column) of every case-insensitive, non-overlapping occurrence of `query`."""
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    return [(number, match.start()) for number, line in enumerate(text.split("\n"))
            for match in pattern.finditer(line)]


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

