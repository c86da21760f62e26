"""Modals of the import: ask for a file (with path completion), then list the records refused."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static

from widgets.format import printable
from widgets.plain_input import PlainInput
from widgets.stored_text import stored

IMPORTABLE = (".json", ".jsonl", ".ndjson")
MAX_ERRORS_SHOWN = 2000


def complete_path(value: str) -> str | None:
    """The first directory entry that extends `value` (directories end in a slash)."""
    expanded = os.path.expanduser(value)
    folder, prefix = os.path.split(expanded)
    try:
        entries = sorted(os.scandir(folder or "."), key=lambda entry: entry.name)
    except OSError:
        return None
    candidates = [e for e in entries if e.name.startswith(prefix) and e.name != prefix
                  and (prefix.startswith(".") or not e.name.startswith("."))]
    preferred = [e for e in candidates if e.is_dir() or e.name.endswith(IMPORTABLE)]
    if not candidates:
        return None
    chosen = (preferred or candidates)[0]
    completion = chosen.name[len(prefix):] + ("/" if chosen.is_dir() else "")
    return value + completion


class PathSuggester(Suggester):
    """Suggests file and folder names as the analyst types a path (read in a thread)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        """Complete the last part of the path."""
        if not value:
            return None
        return await asyncio.to_thread(complete_path, value)


class PathPromptScreen(ModalScreen[Path | None]):
    """Asks for a path; Enter answers it, Escape answers None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    def __init__(self, title: str, hint: str, value: str, *, complete: bool = True) -> None:
        super().__init__()
        self.prompt_title = title
        self.hint = hint
        self.value = value
        self.complete = complete

    def compose(self) -> ComposeResult:
        """A title, the path input and a hint."""
        with Vertical(classes="prompt"):
            yield Label(self.prompt_title, classes="prompt-title")
            path_input = PlainInput(self.value, id="path", suggester=PathSuggester()
                               if self.complete else None)
            path_input.cursor_blink = getattr(self.app, "cursor_blink", True)
            yield path_input
            yield Static(self.hint, classes="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Answer the typed path."""
        text = event.value.strip()
        self.dismiss(Path(text) if text else None)

    def action_cancel(self) -> None:
        """Answer nothing."""
        self.dismiss(None)


class ImportPathScreen(PathPromptScreen):
    """Asks which file to import."""

    def __init__(self, start: str | None = None) -> None:
        super().__init__(
            "Import analyses",
            "A JSON document, a JSON array or JSON Lines, as for `incidex --save`. "
            "→ accepts the suggestion, Enter imports, Esc cancels.",
            start if start is not None else os.getcwd() + os.sep,
        )


class ImportErrorsScreen(ModalScreen[None]):
    """Lists every record an import refused, one line each."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="import_errors.close"),
    ]

    def __init__(self, path: Path, errors: list[str]) -> None:
        super().__init__()
        self.path = path
        self.errors = errors

    def compose(self) -> ComposeResult:
        """A title and the error lines in a scrolling list."""
        count = len(self.errors)
        with Vertical(classes="prompt errors"):
            yield Label(stored(f"{count:,} record{'s' if count != 1 else ''} of {self.path.name} "
                               "not imported (the others were saved)", one_line=True),
                        classes="prompt-title")
            with VerticalScroll(id="import-errors"):
                yield Static(_error_lines(self.errors), id="import-error-lines")
            yield Static("Esc or Enter closes.", classes="prompt-hint")

    def action_close(self) -> None:
        """Close the list."""
        self.dismiss(None)


def _error_lines(errors: list[str]) -> Text:
    text = stored("\n".join(printable(error, one_line=True) for error in errors[:MAX_ERRORS_SHOWN]),
                  "red")
    if len(errors) > MAX_ERRORS_SHOWN:
        text.append(f"\n… and {len(errors) - MAX_ERRORS_SHOWN:,} more", style="bold")
    return text
