"""Stored strings as Rich Text: never parsed as markup, terminal controls shown as escapes.

Every string that came from the store, a file or the analyst reaches a renderable through
`stored()` (`markup_source()` where Textual takes only a markup str): a title of `[/]` stays the
text `[/]`, and an ESC in a description is shown as `\\x1b` instead of reaching the terminal.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.markup import escape

from widgets.format import printable


def stored(value: object, style: str | Style = "", *, one_line: bool = False) -> Text:
    """value as plain Text in style: no markup, control characters escaped."""
    return Text(printable(str(value), one_line=one_line), style=style)



def markup_source(value: object) -> str:
    """value as Textual markup that shows it literally (for APIs that take only markup str)."""
    return escape(printable(str(value), one_line=True))
