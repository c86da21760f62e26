"""A filter input that appears on demand and says what to filter by once typing pauses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input

from widgets.plain_input import PlainInput


class FilterBar(PlainInput):
    """Hidden until opened; posts Applied after a pause in typing or on Enter, Left on leaving."""

    DEFAULT_CSS = """
    FilterBar {
        dock: top;
        margin: 0 1;
        display: none;
        &.-open { display: block; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter", id="filter.clear"),
    ]

    @dataclass
    class Applied(Message):
        """The text to filter by (empty: no filter)."""

        filter_bar: FilterBar
        text: str

    @dataclass
    class Left(Message):
        """The analyst left the filter (Enter or Escape); focus belongs elsewhere."""

        filter_bar: FilterBar

    def __init__(self, *, placeholder: str = "", debounce_seconds: float = 0.3,
                 id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id)
        self.debounce_seconds = debounce_seconds
        self._timer: Timer | None = None

    def open(self) -> None:
        """Show and focus the filter."""
        self.add_class("-open")
        # At once, not after a refresh as focus() does: the keys typed (or pasted) right after
        # the one that opened the filter must land here, not run the list's own keys.
        self.screen.set_focus(self)

    def action_clear(self) -> None:
        """Clear and hide the filter, and say so at once."""
        self._stop_timer()
        self.value = ""
        self.remove_class("-open")
        self.post_message(self.Applied(self, ""))
        self.post_message(self.Left(self))

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter once typing pauses."""
        if event.input is not self:
            return
        self._stop_timer()
        text = event.value.strip()
        self._timer = self.set_timer(self.debounce_seconds,
                                     lambda: self.post_message(self.Applied(self, text)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Filter now and give the focus back; an empty filter also hides the bar."""
        if event.input is not self:
            return
        self._stop_timer()
        text = event.value.strip()
        if not text:
            self.remove_class("-open")
        self.post_message(self.Applied(self, text))
        self.post_message(self.Left(self))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
