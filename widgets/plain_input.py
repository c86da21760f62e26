"""An input whose value never holds terminal control characters, typed, pasted or set."""

from __future__ import annotations

from textual.widgets import Input

from widgets.format import without_controls


class PlainInput(Input):
    """An Input that drops control characters (a pasted ESC would otherwise reach the screen)."""

    def validate_value(self, value: str) -> str:
        """The value without control characters or line breaks."""
        return without_controls(value.replace("\t", " ").replace("\n", " "))
