"""Every key of every screen, in one scrolling table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from widgets.stored_text import stored

Section = tuple[str, Iterable[BindingType]]
COLUMNS_TEXT = Text.assemble(
    ("Incident list columns  ", "bold"),
    ("An", "bold cyan"), " analyses of the incident  ·  ",
    ("Sim", "bold cyan"), " similar past incidents seen before (· until known)  ·  ",
    ("Severity", "bold cyan"), " of the latest analysis\n",
)


def key_names(binding: Binding) -> str:
    """The keys of a binding as an analyst reads them: 'g / home'."""
    names = {"slash": "/", "question_mark": "?", "escape": "esc", "enter": "enter",
             "left_square_bracket": "[", "right_square_bracket": "]", "pageup": "pgup",
             "pagedown": "pgdn", "colon": ":", "plus": "+", "minus": "-",
             "equals_sign": "=", "ctrl+p": "ctrl+p"}
    keys = [part.strip() for part in binding.key.split(",")]
    return " / ".join(names.get(key, key) for key in keys)


def keys_table(sections: list[Section]) -> Table:
    """A table of section, keys, what they do and the binding id to remap them."""
    table = Table(box=None, padding=(0, 2), expand=True, show_header=True,
                  header_style="bold")
    table.add_column("Where", style="bold", no_wrap=True)
    table.add_column("Keys", style="bold cyan", no_wrap=True)
    # What a key does matters more than the id to remap it: on a narrow terminal the ids are
    # cut short (an ellipsis) before the descriptions lose their room.
    table.add_column("Does", min_width=16)
    table.add_column("Binding id", style="dim", no_wrap=True, overflow="ellipsis")
    for title, bindings in sections:
        first = True
        for item in bindings:
            binding = item if isinstance(item, Binding) else Binding(*item)
            if not binding.description:
                continue
            table.add_row(stored(title if first else ""), stored(key_names(binding)),
                          stored(binding.description), stored(binding.id or ""))
            first = False
        table.add_row("", "", "", "")
    return table


class HelpScreen(ModalScreen[None]):
    """The keys of every screen; Esc, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
        Binding("j,down", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id="help.up"),
    ]

    def __init__(self, sections: list[Section]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        """A title and the table of keys."""
        with Vertical(id="help-dialog"):
            yield Label(Text("Keys  ·  ctrl+p opens the command palette (every action by name)",
                             style="bold"), id="help-title")
            with VerticalScroll(id="help-keys"):
                yield Static(keys_table(self.sections))
                yield Static(COLUMNS_TEXT, id="help-columns")
            yield Static("Esc, ? or q closes.", classes="prompt-hint")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        """Scroll the table."""
        self.query_one("#help-keys", VerticalScroll).scroll_relative(y=lines, animate=False)
