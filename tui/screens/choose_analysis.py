"""Pick one of an incident's analyses in a modal list (the other side of a comparison)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option


class ChooseAnalysisScreen(ModalScreen[int | None]):
    """Lists labelled analyses; Enter answers the chosen one's index, Esc answers None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="choose_analysis.cancel"),
    ]

    def __init__(self, title: str, labels: list[tuple[int, Text]]) -> None:
        super().__init__()
        self.choice_title = title
        self.labels = labels

    def compose(self) -> ComposeResult:
        """The title, the analyses and the keys."""
        with Vertical(classes="prompt"):
            yield Label(Text(self.choice_title), classes="prompt-title")
            yield OptionList(*[Option(label, id=str(index)) for index, label in self.labels],
                             id="choose-analysis")
            yield Static(Text("Enter compares with the highlighted analysis · Esc cancels",
                              style="dim"), classes="prompt-hint")

    @on(OptionList.OptionSelected, "#choose-analysis")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(event.option.id or 0))

    def action_cancel(self) -> None:
        """Close without a choice."""
        self.dismiss(None)
