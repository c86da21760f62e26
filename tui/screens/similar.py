"""Similar past incidents, for the selected incident or for a typed description."""

from __future__ import annotations

from datetime import datetime, timedelta
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
from widgets.format import SEVERITY_RANK
from widgets.plain_input import PlainInput
from widgets.similar_list import SimilarList
from widgets.stored_text import stored

# The minimum severities `s` cycles through (None: any), and the age windows `d` cycles through.
MINIMUM_SEVERITIES: tuple[str | None, ...] = (None, "low", "medium", "high", "critical")
AGE_WINDOWS_DAYS: tuple[int | None, ...] = (None, 7, 30, 90, 365)


def severities_at_least(minimum: str | None) -> list[str] | None:
    """The severity labels at or above minimum (None: no filter)."""
    if minimum is None:
        return None
    return sorted(label for label, rank in SEVERITY_RANK.items()
                  if rank >= SEVERITY_RANK[minimum])


class SimilarScreen(IncidexScreen):
    """Ranked similar incidents with why they matched; Enter opens one, Escape goes back."""

    SUB_TITLE = "similar incidents"
    AUTO_FOCUS = None
    TYPING_ACTIONS: ClassVar[frozenset[str]] = frozenset({"edit_query"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="similar.back"),
        Binding("slash", "edit_query", "Query", id="similar.query", priority=True),
        Binding("s", "cycle_severity", "Severity", id="similar.severity"),
        Binding("d", "cycle_age", "Age", id="similar.age"),
        # Hidden from the footer (80 columns): a row with near-duplicates says "x lists them".
        Binding("x", "toggle_members", "Near-duplicates", show=False, id="similar.members"),
        Binding("j", "move(1)", "Down", show=False, id="similar.down"),
        Binding("k", "move(-1)", "Up", show=False, id="similar.up"),
    ]

    def __init__(self, incident_id: str | None = None, title: str | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.incident_title = title
        self.query_text: str | None = None
        self.minimum_severity: str | None = None
        self.age_window_days: int | None = None
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
        self.query_text = text
        self.generation += 1
        generation = self.generation
        # The indicator only shows when the search is slow: no flicker, and focus stays put.
        self.set_timer(0.3, lambda: self._show_loading(generation))
        target = f"“{text}”" if text else f"{incident_id}" + (
            f" ({self.incident_title})" if self.incident_title else "")
        self._status(f"{self._filters()}Searching for incidents similar to {target}…")
        since = (None if self.age_window_days is None
                 else self.incidex.now() - timedelta(days=self.age_window_days))
        self._search(self.generation, text, incident_id,
                     severities_at_least(self.minimum_severity), since)

    def _filter_words(self) -> list[str]:
        """The active filters in words."""
        words = []
        if self.minimum_severity is not None:
            words.append(f"severity ≥ {self.minimum_severity}")
        if self.age_window_days is not None:
            words.append(f"last {self.age_window_days} days")
        return words

    def _filters(self) -> str:
        """The active filters as a status-line prefix (first, so 80 columns show them)."""
        return "".join(f"{word} · " for word in self._filter_words())

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
        filters = self._filters()
        self._status(f"{filters}{count} incident{'s' if count != 1 else ''} similar to "
                     f"{subject}{cached}" if count
                     else f"{filters}No similar incident for {subject}")

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
        self.focus_now(self.query_one("#query", Input))

    def action_cycle_severity(self) -> None:
        """Show only incidents at or above the next minimum severity, then search again."""
        position = MINIMUM_SEVERITIES.index(self.minimum_severity)
        self.minimum_severity = MINIMUM_SEVERITIES[(position + 1) % len(MINIMUM_SEVERITIES)]
        self._search_again()

    def action_cycle_age(self) -> None:
        """Show only incidents from the next shorter window of days, then search again."""
        position = AGE_WINDOWS_DAYS.index(self.age_window_days)
        self.age_window_days = AGE_WINDOWS_DAYS[(position + 1) % len(AGE_WINDOWS_DAYS)]
        self._search_again()

    def _search_again(self) -> None:
        """Repeat the current query with the current filters (nothing to do before one)."""
        if self.query_text is not None:
            self.search(text=self.query_text)
        elif self.incident_id is not None:
            self.search(incident_id=self.incident_id)
        else:
            filters = ", ".join(self._filter_words()) or "none"
            self._status(f"Filters: {filters}. Type a query and press Enter.")

    def action_toggle_members(self) -> None:
        """List (or fold again) the near-duplicates folded into the highlighted hit."""
        hit = self.query_one(SimilarList).toggle_members()
        if hit is None:
            self.notify("This row has no near-duplicates to list.", timeout=3)

    def action_move(self, delta: int) -> None:
        """Move in the results."""
        results = self.query_one(SimilarList)
        if results.option_count:
            current = results.highlighted if results.highlighted is not None else -delta
            results.highlighted = max(0, min(results.option_count - 1, current + delta))

    @work(thread=True, exclusive=True, group="similar", exit_on_error=False)
    def _search(self, generation: int, text: str | None, incident_id: str | None,
                severity: list[str] | None, since: datetime | None) -> None:
        store = self.incidex.store
        if not hasattr(store, "similar"):
            raise UserFacingError("similar-incident search is not available in this store yet")
        result = store.similar(text=text, incident_id=incident_id, k=DEFAULT_SIMILAR_K,
                               severity=severity, since=since)
        if not get_current_worker().is_cancelled:
            self.post_message(SimilarFound(generation, result))
