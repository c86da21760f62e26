"""Two analyses of one incident side by side, key by key, the differing keys marked."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from widgets.format import json_text
from widgets.stored_text import stored

DIFFERENT_STYLE = "bold yellow"


def compare_rows(left: dict[str, Any], right: dict[str, Any], key_order: tuple[str, ...] = ()
                 ) -> list[tuple[str, Any, Any, bool]]:
    """(key, left value, right value, differ) for every top-level key of either analysis, in
    key_order first, then left's order, then right's; a missing key is `...`."""
    keys = list(dict.fromkeys([*(k for k in key_order if k in left or k in right), *left, *right]))
    return [(key, left.get(key, ...), right.get(key, ...),
             key not in left or key not in right or left[key] != right[key]) for key in keys]


class CompareScreen(ModalScreen[None]):
    """Shows compare_rows of two analyses as a three-column table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,c", "close", "Close", id="compare.close"),
    ]

    def __init__(self, left_title: str, right_title: str,
                 rows: list[tuple[str, Any, Any, bool]]) -> None:
        super().__init__()
        self.left_title, self.right_title, self.rows = left_title, right_title, rows

    def compose(self) -> ComposeResult:
        """A title, the table and how to close it."""
        differing = sum(1 for *_, differ in self.rows if differ)
        with Vertical(classes="prompt compare"):
            yield Label(Text(f"Compare analyses: {differing} of {len(self.rows)} keys differ"),
                        classes="prompt-title")
            with VerticalScroll(id="compare-body"):
                yield Static(self._table(), id="compare-table")
            yield Static(Text("≠ marks a key whose values differ. Esc, q or c closes.",
                              style="dim"), classes="prompt-hint")

    def _table(self) -> Table:
        table = Table(expand=True, show_lines=True, header_style="bold")
        table.add_column("", width=1, no_wrap=True)
        table.add_column("key", ratio=1, overflow="fold")
        table.add_column(stored(self.left_title, one_line=True), ratio=3, overflow="fold")
        table.add_column(stored(self.right_title, one_line=True), ratio=3, overflow="fold")
        for key, left, right, differ in self.rows:
            style = DIFFERENT_STYLE if differ else ""
            table.add_row(Text("≠" if differ else "", style=DIFFERENT_STYLE),
                          stored(key, style), _value(left, style), _value(right, style))
        return table

    def action_close(self) -> None:
        """Back to the analysis."""
        self.dismiss(None)


def _value(value: Any, style: str) -> Text:
    if value is ...:
        return Text("(absent)", style="dim italic")
    return stored(json_text(value, indent=1), style)
