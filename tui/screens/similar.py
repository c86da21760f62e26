"""Similar past incidents, for the selected incident or for a typed description."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.worker import Worker, get_current_worker

from store import DEFAULT_SIMILAR_K
from tui.importing import UserFacingError
from tui.messages import SimilarFound
from tui.screens.base import IncidexScreen
from widgets.plain_input import PlainInput
from widgets.similar_list import SimilarList
from widgets.stored_text import stored


class SimilarScreen(IncidexScreen):
    """Ranked similar incidents with why they matched; Enter opens one, Escape goes back."""

    SUB_TITLE = "similar incidents"
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="similar.back"),
        Binding("slash", "edit_query", "New query", id="similar.query"),
        Binding("j", "move(1)", "Down", show=False, id="similar.down"),
        Binding("k", "move(-1)", "Up", show=False, id="similar.up"),
    ]

    def __init__(self, incident_id: str | None = None, title: str | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.incident_title = title
        self.generation = 0
        self.answered = 0

    def compose(self) -> ComposeResult:
        """Header, query input, status line, results, footer."""
        yield Header()
        query = PlainInput(placeholder="Describe an incident or paste IOCs, then Enter", id="query")
        query.cursor_blink = self.incidex.cursor_blink
        yield query
        yield Static(id="similar-status")
        yield SimilarList(id="similar-results")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Search for the incident given, or wait for a typed query."""
        if self.incident_id is not None:
            self.query_one(SimilarList).focus()
            self.search(incident_id=self.incident_id)
        else:
            self.query_one("#query", Input).focus()
            self._status("Type a description, IOCs or techniques and press Enter.")

    def search(self, *, text: str | None = None, incident_id: str | None = None) -> None:
        """Start a search; a newer one makes this one stale."""
        self.generation += 1
        generation = self.generation
        # The indicator only shows when the search is slow: no flicker, and focus stays put.
        self.set_timer(0.3, lambda: self._show_loading(generation))
        target = f"“{text}”" if text else f"{incident_id}" + (
            f" ({self.incident_title})" if self.incident_title else "")
        self._status(f"Searching for incidents similar to {target}…")
        self._search(self.generation, text, incident_id)

    def _show_loading(self, generation: int) -> None:
        if generation == self.generation and self.answered != generation:
            self.query_one(SimilarList).loading = True

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.incident_id = None
            self.search(text=text)
            self.query_one(SimilarList).focus()

    def on_similar_found(self, message: SimilarFound) -> None:
        """Show the hits."""
        if message.generation != self.generation:
            return
        self.answered = message.generation
        results = self.query_one(SimilarList)
        results.loading = False
        result = message.result
        results.update_hits(result.hits)
        if result.query_incident_id:
            subject = result.query_incident_id + (
                f" ({self.incident_title})" if self.incident_title else "")
        else:
            subject = f"“{result.query_text}”"
        cached = " (from the cache)" if result.from_cache else ""
        count = len(result.hits)
        self._status(f"{count} incident{'s' if count != 1 else ''} similar to {subject}{cached}"
                     if count else f"No similar incident for {subject}")

    @on(OptionList.OptionSelected, "#similar-results")
    def _hit_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.incidex.open_analysis(event.option.id)

    def worker_ended_early(self, worker: Worker[object]) -> None:
        """Stop the loading indicator."""
        self.query_one(SimilarList).loading = False
        self._status("The search failed; see the notification.")

    def _status(self, text: str) -> None:
        self.query_one("#similar-status", Static).update(stored(text, one_line=True))

    def action_back(self) -> None:
        """Return to where the analyst came from."""
        self.dismiss()

    def action_edit_query(self) -> None:
        """Focus the query input."""
        self.query_one("#query", Input).focus()

    def action_move(self, delta: int) -> None:
        """Move in the results."""
        results = self.query_one(SimilarList)
        if results.option_count:
            current = results.highlighted if results.highlighted is not None else -delta
            results.highlighted = max(0, min(results.option_count - 1, current + delta))

    @work(thread=True, exclusive=True, group="similar", exit_on_error=False)
    def _search(self, generation: int, text: str | None, incident_id: str | None) -> None:
        store = self.incidex.store
        if not hasattr(store, "similar"):
            raise UserFacingError("similar-incident search is not available in this store yet")
        result = store.similar(text=text, incident_id=incident_id, k=DEFAULT_SIMILAR_K)
        if not get_current_worker().is_cancelled:
            self.post_message(SimilarFound(generation, result))
