"""A yes-or-no question in a modal."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks a question; y or Enter answers True, n or Escape answers False."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, question: Text) -> None:
        super().__init__()
        self.question_title = title
        self.question = question

    def compose(self) -> ComposeResult:
        """The title, the question and the keys that answer it."""
        with Vertical(classes="prompt"):
            yield Label(Text(self.question_title), classes="prompt-title")
            yield Static(self.question)
            yield Static(Text("y or Enter: yes · n or Esc: no", style="dim"),
                         classes="prompt-hint")

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)
