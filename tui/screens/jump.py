"""The `:` prompt: type an incident id (completed as you type) and go straight to it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static

IdLookup = Callable[[str], list[str]]


class IncidentIdSuggester(Suggester):
    """Completes a typed id prefix to the first matching incident id (looked up in a thread)."""

    def __init__(self, lookup: IdLookup) -> None:
        super().__init__(use_cache=True, case_sensitive=True)
        self.lookup = lookup

    async def get_suggestion(self, value: str) -> str | None:
        """The first id that starts with what was typed (any case)."""
        if len(value.strip()) < 2:
            return None
        found = await asyncio.to_thread(self.lookup, value.strip())
        for incident_id in found:
            if len(incident_id) > len(value) and incident_id.lower().startswith(value.lower()):
                return value + incident_id[len(value):]
        return None


class JumpScreen(ModalScreen[str | None]):
    """Asks for an incident id; Enter answers it, Escape answers None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="jump.cancel"),
    ]

    def __init__(self, lookup: IdLookup) -> None:
        super().__init__()
        self.lookup = lookup

    def compose(self) -> ComposeResult:
        """A title, the id input and a hint."""
        with Vertical(classes="prompt"):
            yield Label("Go to incident", classes="prompt-title")
            yield Input(placeholder="incident id, e.g. INC-2026-0000062", id="jump-id",
                        suggester=IncidentIdSuggester(self.lookup))
            yield Static("Enter opens it (→ accepts the completion) · Esc cancels · "
                         "ctrl+p also finds incidents by title", classes="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Answer with the typed id."""
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """Answer None."""
        self.dismiss(None)
