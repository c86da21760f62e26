"""The start screen: every incident, newest first, held a few keyset pages at a time."""

from __future__ import annotations

import threading
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import Worker

from store import IncidentSort
from tui.list_background import ImportAndDemo, WatchAndWarm, WindowFetching
from tui.messages import IncidentsCounted, IncidentsPageLoaded, PageDirection
from tui.paging import PageWindow
from widgets.filter_bar import FilterBar
from widgets.incident_table import IncidentTable
from widgets.stored_text import stored

SORTS: tuple[IncidentSort, ...] = ("updated", "created", "incident_id")
SORT_LABELS = {"updated": "last update", "created": "creation", "incident_id": "incident id"}
EMPTY_TEXT = """[b]No incidents yet.[/b]

Add data from a shell:
  [b]incidex demo --count 1000[/b]     realistic synthetic incidents and analyses
  [b]incidex --save FILE[/b]           analyses from a JSON or JSON Lines file

Or right here: press [b]d[/b] to fill {count:,} demo analyses now, or [b]i[/b] to import a file."""


class IncidentListScreen(WatchAndWarm, ImportAndDemo, WindowFetching):
    """Incidents with their latest severity; filter, sort, open, find similar, import."""

    SUB_TITLE = "incidents"
    AUTO_FOCUS = "#incidents"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="list.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="list.clear_filter"),
        Binding("s", "cycle_sort", "Sort", id="list.sort"),
        Binding("f", "similar", "Similar", id="list.similar"),
        Binding("F", "similar_text", "Similar by text", show=False, id="list.similar_text"),
        Binding("j", "move(1)", "Down", show=False, id="list.down"),
        Binding("k", "move(-1)", "Up", show=False, id="list.up"),
        Binding("g,home", "first", "First", show=False, id="list.first"),
        Binding("G,end", "last", "Last", show=False, id="list.last"),
        Binding("r", "refresh", "Refresh", show=False, id="list.refresh"),
        Binding("i", "import_file", "Import", id="list.import"),
        Binding("d", "fill_demo", "Demo data", id="list.demo"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.window = PageWindow(max_pages=5)
        self.sort: IncidentSort = "updated"
        self.filter_text: str | None = None
        self.generation = 0
        self.loaded = False
        self.latest_pk: int | None = None
        self._loading_generation = -1
        self._fetching: set[str] = set()
        self._warm_stop = threading.Event()
        self.task_stop = threading.Event()
        self._warmed_top: str | None = None
        self.busy: set[str] = set()

    def compose(self) -> ComposeResult:
        """Header, filter, status line, the table (or the empty-store help), footer."""
        yield Header()
        filter_input = FilterBar(placeholder="Filter by words in id, title, description or "
                                 "findings (Enter applies, Esc clears)", id="filter")
        filter_input.cursor_blink = self.incidex.cursor_blink
        yield filter_input
        yield Static("Loading incidents…", id="list-status")
        table = IncidentTable(now=self.incidex.now, id="incidents")
        table.edge_margin = self.page_size
        yield table
        with Vertical(id="empty"):
            yield Static(EMPTY_TEXT.format(count=self.incidex.demo_count),  # trusted markup
                         id="empty-message")
        yield ProgressBar(id="task-progress", show_eta=False)
        yield Footer()

    def on_mount(self) -> None:
        """Load the first page and start the timers that watch for new analyses."""
        self.query_one("#empty").display = False
        self.query_one("#task-progress").display = False
        self.load(direction="first")
        if self.incidex.poll_seconds:
            self.set_interval(self.incidex.poll_seconds, self.check_for_new_analyses)
        if self.incidex.warm_cache:
            self.set_interval(1.0, self.warm_if_scrolled)

    def on_unmount(self) -> None:
        """Stop background threads so quitting does not wait for them."""
        self.stop_warming()
        self.task_stop.set()

    def on_screen_suspend(self) -> None:
        """Give the database to the analyst's request on the next screen."""
        self.stop_warming()

    def on_screen_resume(self) -> None:
        """Warm the cache again for what is on screen."""
        if self.loaded:
            self.start_warming()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the demo key once there is data; grey out row actions with no rows."""
        if not super().check_action(action, parameters):
            return False
        if action == "fill_demo":
            return self.loaded and not self.window.rows and not self.filter_text and not self.busy
        if action in ("similar", "move"):
            return True if self.window.rows else None
        return True

    # Loading the window -------------------------------------------------------------------

    def load(self, direction: PageDirection, pages: int = 1) -> None:
        """(Re)load the window from the top, the end, or again in place."""
        self.stop_warming()
        self.generation += 1
        self._fetching.clear()
        if direction != "reload":
            # The indicator only shows when loading is slow: no flicker on quick pages.
            generation = self.generation
            self.set_timer(0.3, lambda: self._show_loading(generation))
        self._fetch_window(self.generation, direction, self.sort, self.filter_text, pages)
        self.count()

    def _show_loading(self, generation: int) -> None:
        if generation == self.generation and self._loading_generation != generation:
            self.table.loading = True

    def on_incidents_page_loaded(self, message: IncidentsPageLoaded) -> None:
        """Put the arrived rows into the window and the table."""
        if message.generation != self.generation:
            return
        if message.latest_pk is not None:
            self.latest_pk = max(message.latest_pk, self.latest_pk or 0)
        if message.direction in ("next", "previous"):
            self._fetching.discard(message.direction)
            self._add_page(message)
        else:
            self._replace_window(message)
        self._update_status()
        self._maybe_fetch_more()

    def _replace_window(self, message: IncidentsPageLoaded) -> None:
        table = self.table
        keep = table.selected.incident_id if table.selected else None
        screen_row = table.cursor - table.top
        from_end = message.direction == "last"
        self.window.reset(message.pages, from_end=from_end)
        rows = self.window.rows
        if message.direction == "reload":
            found = self.window.index_of(keep) if keep else None
            cursor = found if found is not None else min(table.cursor, len(rows) - 1)
            table.set_rows(rows, cursor=cursor, screen_row=screen_row)
        else:
            table.set_rows(rows, cursor=len(rows) - 1 if from_end else 0)
        table.loading = False
        self._loading_generation = message.generation
        self.loaded = True
        empty = not rows and not self.filter_text
        self.query_one("#empty").display = empty
        table.display = not empty
        self.refresh_bindings()
        self.request_similar_counts([row.incident_id for row in rows])
        self.start_warming()

    def _add_page(self, message: IncidentsPageLoaded) -> None:
        page = message.pages[0]
        if message.direction == "next":
            self.table.append_rows(page.rows, self.window.append(page))
        else:
            self.table.prepend_rows(page.rows, self.window.prepend(page))
        self.request_similar_counts([row.incident_id for row in page.rows])

    def _maybe_fetch_more(self) -> None:
        rows, cursor = len(self.window.rows), self.table.cursor
        window = self.window
        if rows - 1 - cursor < self.page_size and window.next_cursor and "next" not in \
                self._fetching:
            self._fetching.add("next")
            self._fetch_edge(self.generation, "next", window.next_cursor, self.sort,
                             self.filter_text)
        if cursor < self.page_size and window.previous_cursor and "previous" not in \
                self._fetching:
            self._fetching.add("previous")
            self._fetch_edge(self.generation, "previous", window.previous_cursor, self.sort,
                             self.filter_text)

    def count(self) -> None:
        """Count the listed incidents again."""
        self._count(self.generation, self.filter_text)

    def on_incidents_counted(self, message: IncidentsCounted) -> None:
        """Show how many incidents the listing has."""
        if message.generation == self.generation:
            self.window.total = message.total
            self._update_status()

    def _update_status(self) -> None:
        window, table = self.window, self.table
        total = f"{window.total:,}" if window.total is not None else "…"
        parts = []
        position = window.position(table.cursor) if window.rows else None
        if position is not None:
            parts.append(f"row {position + 1:,} of {total}")
        else:
            parts.append(f"{total} incidents")
        if self.filter_text:
            parts.append(f"matching “{self.filter_text}”" if window.rows or not self.loaded
                         else f"no incident matches “{self.filter_text}”")
        parts.append(f"sorted by {SORT_LABELS[self.sort]}")
        self.query_one("#list-status", Static).update(stored(" · ".join(parts), one_line=True))

    def on_incident_table_highlighted(self, _message: IncidentTable.Highlighted) -> None:
        """Keep the position in the status line."""
        self._update_status()

    def on_incident_table_edge_approached(self, _message: IncidentTable.EdgeApproached) -> None:
        """Fetch the neighbouring page before the analyst reaches it."""
        self._maybe_fetch_more()

    def on_incident_table_selected(self, message: IncidentTable.Selected) -> None:
        """Open the chosen incident."""
        self.stop_warming()
        self.incidex.open_analysis(message.incident_id)

    def worker_ended_early(self, worker: Worker[object]) -> None:
        """Forget in-flight fetches and hide indicators a failed worker left."""
        if worker.group == "page":
            self._fetching.clear()
        if worker.group in ("list", "import", "demo"):
            self.table.loading = False
            self.busy.discard(worker.group)
            self.query_one("#task-progress").display = bool(self.busy)

    # Filtering, sorting, moving ------------------------------------------------------------

    def action_filter(self) -> None:
        """Show and focus the filter."""
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter."""
        if self.filter_text or self.query_one(FilterBar).has_class("-open"):
            self.query_one(FilterBar).action_clear()

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        """List the incidents matching the filter."""
        query = message.text or None
        if query != self.filter_text:
            self.filter_text = query
            self.load("first")

    def on_filter_bar_left(self, _message: FilterBar.Left) -> None:
        """Give the keys back to the table."""
        self.table.focus()

    def action_cycle_sort(self) -> None:
        """Sort by the next key: last update, creation, incident id."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.load("first")

    def action_move(self, delta: int) -> None:
        """Move the cursor."""
        self.table.action_move(delta)

    def action_first(self) -> None:
        """Go to the newest incident."""
        if self.window.at_top or not self.window.pages:
            self.table.action_first()
        else:
            self.load("first")

    def action_last(self) -> None:
        """Go to the oldest incident (the last keyset page, read backwards)."""
        if self.window.pages and self.window.next_cursor is None:
            self.table.action_last()
        else:
            self.load("last")

    def action_refresh(self) -> None:
        """Reload what is shown."""
        self.reload_in_place()

    def action_similar_text(self) -> None:
        """Find incidents similar to a typed description."""
        self.stop_warming()
        self.incidex.open_similar()

    def action_similar(self) -> None:
        """Find incidents similar to the selected one."""
        if (row := self.table.selected) is not None:
            self.stop_warming()
            self.incidex.open_similar(incident_id=row.incident_id, title=row.title)
