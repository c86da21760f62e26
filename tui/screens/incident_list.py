"""The start screen: every incident, newest first, held a few keyset pages at a time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import Worker, get_current_worker

from store import (
    DEFAULT_SIMILAR_K,
    INCIDENT_SORTS,
    IncidentSort,
    PageCursor,
)
from tui.importing import ImportTally, fill_demo, import_file
from tui.messages import (
    CacheWarmed,
    DemoFillFinished,
    DemoFillProgressed,
    ImportFinished,
    ImportProgressed,
    IncidentsCounted,
    IncidentsPageLoaded,
    NewAnalysesNoticed,
    PageDirection,
    SimilarCountsLoaded,
)
from tui.paging import PageWindow
from tui.screens.base import IncidexScreen
from tui.screens.import_file import ImportErrorsScreen, ImportPathScreen
from widgets.filter_bar import FilterBar
from widgets.format import printable
from widgets.incident_table import IncidentTable
from widgets.stored_text import stored

# Each sort's name, then how its largest-first and smallest-first orders read.
SORT_LABELS: dict[IncidentSort, tuple[str, str, str]] = {
    "updated": ("last update", "latest first", "earliest first"),
    "created": ("creation", "newest first", "oldest first"),
    "severity": ("severity", "worst first", "mildest first"),
    "analyses": ("analysis count", "most first", "fewest first"),
    "cost": ("cost", "dearest first", "cheapest first"),
    "incident_id": ("incident id", "Z to A", "A to Z"),
}
EMPTY_TEXT = """[b]No incidents yet.[/b]

Add data from a shell:
  [b]{demo}[/b]
      realistic synthetic incidents and analyses
  [b]{save}[/b]
      analyses from a JSON or JSON Lines file

Or right here: press [b]d[/b] to fill {count:,} demo analyses now,
or [b]i[/b] to import a file."""


class IncidentListScreen(IncidexScreen):
    """Incidents with their latest severity; filter, sort, open, find similar, import."""

    SUB_TITLE = "incidents"
    AUTO_FOCUS = "#incidents"
    TYPING_ACTIONS: ClassVar[frozenset[str]] = frozenset({"filter"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="list.filter", priority=True),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="list.clear_filter"),
        Binding("s", "cycle_sort", "Sort", id="list.sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False, id="list.reverse_sort"),
        Binding("n", "go_to_new", "Go to new incidents", show=False, id="list.new"),
        Binding("f", "similar", "Similar", id="list.similar"),
        Binding("y", "copy_id", "Copy incident id", show=False, id="list.copy_id"),
        Binding("F", "similar_text", "Similar by text", show=False, id="list.similar_text"),
        Binding("a", "analyze", "Analyse", show=False, id="list.analyze"),
        Binding("j", "move(1)", "Down", show=False, id="list.down"),
        Binding("k", "move(-1)", "Up", show=False, id="list.up"),
        Binding("g,home", "first", "First", show=False, id="list.first"),
        Binding("G,end", "last", "Last", show=False, id="list.last"),
        Binding("r", "refresh", "Refresh", show=False, id="list.refresh"),
        Binding("i", "import_file", "Import", show=False, id="list.import"),
        Binding("d", "fill_demo", "Demo", id="list.demo"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.window = PageWindow(max_pages=5)
        remembered = self.incidex.view_state
        sort = remembered.get("sort")
        self.sort: IncidentSort = sort if sort in INCIDENT_SORTS else "updated"
        self.descending: bool = remembered.get("descending", True) is not False
        # The order of the rows on screen, which the status line names: a new sort shows there
        # when its rows arrive (a count that comes back first must not name it over old rows).
        self.shown_order: tuple[IncidentSort, bool] = (self.sort, self.descending)
        self.new_incidents = 0
        self.filter_text: str | None = None
        self.generation = 0
        self.loaded = False
        self.latest_pk: int | None = None
        self._loading_generation = -1
        self._fetching: set[str] = set()
        self._warm_stop = threading.Event()
        self.task_stop = threading.Event()
        self._warmed_top: str | None = None
        self._importing: str | None = None
        self._import_saved = 0
        self.busy: set[str] = set()

    def compose(self) -> ComposeResult:
        """Header, filter, status line, the table (or the empty-store help), footer."""
        yield Header()
        filter_input = FilterBar(placeholder='words, "a phrase", OR, critical, '
                                 "since:2026-11-01, until:…, model:gpt-4o (Enter applies, "
                                 "Esc clears)", id="filter")
        filter_input.cursor_blink = self.incidex.cursor_blink
        yield filter_input
        yield Static("Loading incidents…", id="list-status")
        table = IncidentTable(now=self.incidex.now, id="incidents")
        table.edge_margin = self.page_size
        table.similar_cap = DEFAULT_SIMILAR_K
        table.tooltip = "An: analyses of the incident · Sim: similar past incidents seen before"
        yield table
        with Vertical(id="empty"):
            yield Static(EMPTY_TEXT.format(count=self.incidex.demo_count,  # trusted markup
                                           demo=escape(self.incidex.shell_command(
                                               "demo --count 1000")),
                                           save=escape(self.incidex.shell_command(
                                               "--save FILE"))),
                         id="empty-message")
        yield ProgressBar(id="task-progress", show_eta=False)
        yield Footer(compact=True)

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
        self.stop_background()

    def stop_background(self) -> list[str]:
        """Stop warming now, and imports and demo fills after the batch being saved; returns
        what the analyst must hear about the work left undone."""
        self.stop_warming()
        self.task_stop.set()
        notes = []
        if "import" in self.busy and self._importing is not None:
            notes.append(f"the import of {self._importing} stopped when you quit, after "
                         f"{self._import_saved:,} records; import the file again to save the "
                         "rest (records already saved are skipped)")
        if "demo" in self.busy:
            notes.append("the demo fill stopped when you quit; what it saved is kept")
        return notes

    def on_screen_suspend(self) -> None:
        """Give the database to the analyst's request on the next screen."""
        self.stop_warming()

    def on_screen_resume(self) -> None:
        """Warm the cache again for what is on screen."""
        if self.loaded:
            self.start_warming()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the demo key once there is data; grey out row actions with no rows."""
        allowed = super().check_action(action, parameters)
        if not allowed:
            return allowed
        if action == "fill_demo":
            return self.loaded and not self.window.rows and not self.filter_text and not self.busy
        if action in ("move", "analyze"):
            return True if self.window.rows else None
        return True

    @property
    def page_size(self) -> int:
        """Rows fetched per keyset page."""
        return self.incidex.page_size

    @property
    def table(self) -> IncidentTable:
        """The incident table."""
        return self.query_one("#incidents", IncidentTable)

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
        self._fetch_window(self.generation, direction, self.sort, self.descending,
                           self.filter_text, pages)
        self.count()

    def _show_loading(self, generation: int) -> None:
        if generation != self.generation or self._loading_generation == generation:
            return
        if self.incidex.opened_store is None:
            # The status line says “Loading incidents…” while the store opens: the animated
            # indicator would take the interpreter from the opening itself. Look again later.
            self.set_timer(0.3, lambda: self._show_loading(generation))
            return
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
        self.shown_order = (self.sort, self.descending)  # the generation asked for this order
        rows = self.window.rows
        if message.direction != "reload":
            self.new_incidents = 0
        if message.direction == "reload":
            found = self.window.index_of(keep) if keep else None
            cursor = found if found is not None else min(table.cursor, len(rows) - 1)
            if table.top == 0 and self.window.at_top:
                # New rows show at the top; the cursor stays on its incident, lower down.
                screen_row = cursor
            table.set_rows(rows, cursor=cursor, screen_row=screen_row)
        else:
            table.set_rows(rows, cursor=len(rows) - 1 if from_end else 0)
        table.loading = False
        self._loading_generation = message.generation
        self.loaded = True
        empty = not rows and not self.filter_text
        self.query_one("#empty").display = empty
        table.display = not empty
        if not empty and not isinstance(self.focused, FilterBar):
            # After the first demo fill or import the table was hidden: give it the keys.
            table.focus()
        self.refresh_bindings()
        self.incidex.first_rows_shown()
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
            self._fetch_edge(self.generation, "next", window.next_cursor, self.filter_text)
        if cursor < self.page_size and window.previous_cursor and "previous" not in \
                self._fetching:
            self._fetching.add("previous")
            self._fetch_edge(self.generation, "previous", window.previous_cursor,
                             self.filter_text)

    def count(self) -> None:
        """Count the listed incidents again."""
        self._count(self.generation, self.filter_text)

    def reload_in_place(self) -> None:
        """Reload as many pages as are held, keeping the cursor on its incident."""
        self.load("reload", pages=max(1, len(self.window.pages)))

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
        elif not self.loaded and window.total is None:
            parts.append("Loading incidents…")  # the first page (and the store) still to come
        else:
            parts.append(f"{total} incidents")
        if self.filter_text:
            # A filter with nothing the parser reads (only punctuation) is shown as typed.
            from store import parse_incident_filter  # the indicator patterns: not at start

            understood = (parse_incident_filter(self.filter_text).description()
                          or f"“{self.filter_text}”")
            parts.append(f"matching {understood}" if window.rows or not self.loaded
                         else f"no incident matches {understood}")
        sort, descending = self.shown_order
        name, largest_first, smallest_first = SORT_LABELS[sort]
        parts.append(f"sorted by {name}, {largest_first if descending else smallest_first}")
        if self.new_incidents:
            parts.append(f"{self.new_incidents:,} new (n shows them)")
        vectors = self.incidex.vectors_pending
        if vectors.pending:
            # Until filled, these analyses are found by words and shared indicators only.
            waiting = f" (not filling: {vectors.problem})" if vectors.problem else ""
            parts.append(f"vectors pending: {vectors.pending:,}{waiting}")
        self.query_one("#list-status", Static).update(stored(" · ".join(parts), one_line=True))

    def show_status(self) -> None:
        """Show the status line again (the background vector filler moved on)."""
        if self.is_mounted:
            self._update_status()

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
        """Sort by the next key: last update, creation, severity, analyses, cost, incident id."""
        self.sort = INCIDENT_SORTS[(INCIDENT_SORTS.index(self.sort) + 1) % len(INCIDENT_SORTS)]
        self._sort_changed()

    def action_reverse_sort(self) -> None:
        """Reverse the sort order."""
        self.descending = not self.descending
        self._sort_changed()

    def _sort_changed(self) -> None:
        self.load("first")
        self.incidex.remember_view(sort=self.sort, descending=self.descending)
        name, largest_first, smallest_first = SORT_LABELS[self.sort]
        self.notify(f"Sorted by {name}, {largest_first if self.descending else smallest_first}",
                    timeout=2)

    def action_move(self, delta: int) -> None:
        """Move the cursor."""
        self.table.action_move(delta)

    def action_first(self) -> None:
        """Go to the newest incident."""
        if self.new_incidents and self._new_go_on_top:
            self.new_incidents = 0
            self._update_status()
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

    def action_analyze(self) -> None:
        """Run a new analysis of the selected incident with the chat model."""
        if (row := self.table.selected) is not None:
            self.incidex.analyze_incident(row.incident_id)

    def action_copy_id(self) -> None:
        """Copy the selected incident's id to the clipboard (OSC 52), or say why nothing is."""
        if (row := self.table.selected) is None:
            self.notify("No incident selected to copy the id of", severity="warning")
            return
        self.send_to_clipboard(row.incident_id, printable(row.incident_id, one_line=True),
                               "Enter opens it, with the id in its header")

    def action_similar(self) -> None:
        """Find incidents similar to the selected one, or say why there is none to use."""
        if (row := self.table.selected) is not None:
            self.stop_warming()
            self.incidex.open_similar(incident_id=row.incident_id, title=row.title)
            return
        if not self.loaded:
            reason = "The list is still loading; press f again in a moment."
        elif self.filter_text:
            reason = (f"No incident matches “{escape(self.filter_text)}”, so there is none to "
                      "compare. "
                      "Esc clears the filter; F searches by typed text.")
        else:
            reason = ("There are no incidents yet to compare. Press d for demo data or i to "
                      "import a file; F searches by typed text.")
        self.notify(reason, title="Similar incidents", severity="warning")

    # Importing and demo data -------------------------------------------------------------

    def action_import_file(self) -> None:
        """Ask for a file, then import it in the background."""
        self.app.push_screen(ImportPathScreen(), self._import_chosen)

    def _import_chosen(self, path: Path | None) -> None:
        if path is not None:
            self._start_task("import", f"Importing {path.name}…")
            self._importing, self._import_saved = str(path), 0
            self._import(path)

    def action_fill_demo(self) -> None:
        """Fill an empty store with demo incidents, in the background."""
        if not self.check_action("fill_demo", ()):
            return
        count = self.incidex.demo_count
        self._start_task("demo", f"Saving {count:,} demo analyses…")
        self._fill_demo(count)

    def _start_task(self, group: str, note: str) -> None:
        self.stop_warming()
        self.busy.add(group)
        bar = self.query_one("#task-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#list-status", Static).update(stored(note, one_line=True))
        self.refresh_bindings()

    def end_task(self, group: str) -> None:
        """Hide the progress bar once no task runs."""
        self.busy.discard(group)
        self.query_one("#task-progress").display = bool(self.busy)
        self.refresh_bindings()

    def on_import_progressed(self, message: ImportProgressed) -> None:
        """Advance the progress bar."""
        self.query_one("#task-progress", ProgressBar).update(
            total=max(1, message.total_bytes), progress=message.done_bytes)
        self._import_saved = message.saved

    def on_import_finished(self, message: ImportFinished) -> None:
        """Summarise, list the bad records, refresh the list."""
        self.end_task("import")
        failed = len(message.errors)
        self.notify(f"{message.path.name}: {message.saved:,} saved, {message.duplicates:,} "
                    f"already there, {failed:,} failed", title="Import finished",
                    severity="warning" if failed else "information")
        if failed:
            self.app.push_screen(ImportErrorsScreen(message.path, message.errors))
        self.reload_in_place()
        # Written now, in the background, so that quitting has no snapshot left to write.
        self.incidex.refresh_index_snapshot()

    def on_demo_fill_progressed(self, message: DemoFillProgressed) -> None:
        """Advance the progress bar."""
        self.query_one("#task-progress", ProgressBar).update(total=message.total,
                                                             progress=message.done)

    def on_demo_fill_finished(self, message: DemoFillFinished) -> None:
        """Show the new incidents."""
        self.end_task("demo")
        self.notify(f"{message.saved:,} demo analyses saved", title="Demo data")
        self.load("first")
        self.incidex.refresh_index_snapshot()

    # Other processes' saves and the similar cache ----------------------------------------

    def check_for_new_analyses(self) -> None:
        """Ask the store (in a worker) whether analyses were saved since the last look."""
        if self.latest_pk is not None:
            self._poll(self.latest_pk)

    def on_new_analyses_noticed(self, message: NewAnalysesNoticed) -> None:
        """Refresh the first pages when the analyst is looking at them (the cursor stays on
        its incident) and say how many incidents are new."""
        if self.latest_pk is not None and message.latest_pk <= self.latest_pk:
            return
        self.latest_pk = message.latest_pk
        if self.window.at_top or not self.window.rows:
            self.reload_in_place()
        else:
            self.count()
        if message.new_incidents and self.window.rows:
            self.new_incidents += message.new_incidents
            noun = "incident" if self.new_incidents == 1 else "incidents"
            where = "at the top" if self._new_go_on_top else "saved"
            self.notify(f"{self.new_incidents:,} new {noun} {where}; n goes to them",
                        title="New incidents", timeout=6)
            self._update_status()

    @property
    def _new_go_on_top(self) -> bool:
        return self.sort in ("updated", "created") and self.descending

    def action_go_to_new(self) -> None:
        """Show the newest incidents at the top: newest first, no filter."""
        self.new_incidents = 0
        changed = self.sort != "updated" or not self.descending
        self.sort, self.descending = "updated", True
        if self.filter_text or self.query_one(FilterBar).has_class("-open"):
            self.query_one(FilterBar).action_clear()
        self.load("first")
        if changed:
            self.incidex.remember_view(sort=self.sort, descending=self.descending)

    def request_similar_counts(self, incident_ids: list[str]) -> None:
        """Fetch the cached similar counts of these incidents."""
        if incident_ids:
            self._similar_counts(incident_ids)

    def on_similar_counts_loaded(self, message: SimilarCountsLoaded) -> None:
        """Show the similar-seen-before counts."""
        self.table.set_similar_counts(message.counts)

    def start_warming(self) -> None:
        """Warm the similar-incident cache for the incidents on screen, in the background."""
        if not self.incidex.warm_cache:
            return
        self.stop_warming()
        visible = self.table.visible_incident_ids()
        self._warmed_top = visible[0] if visible else None
        if visible and self.is_current:
            self._warm_stop = threading.Event()
            self._warm(visible, self._warm_stop)

    def stop_warming(self) -> None:
        """Let the analyst's own request have the database."""
        self._warm_stop.set()

    def warm_if_scrolled(self) -> None:
        """Warm again when other incidents came on screen."""
        visible = self.table.visible_incident_ids()
        if self.loaded and visible and visible[0] != self._warmed_top:
            self.start_warming()

    def on_cache_warmed(self, message: CacheWarmed) -> None:
        """Show the counts the warming made known."""
        if not message.stopped:
            self.request_similar_counts(message.incident_ids)

    # Workers -----------------------------------------------------------------------------

    def _post_unless_cancelled(self, message: Any) -> None:
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def _fetch_window(self, generation: int, direction: PageDirection, sort: IncidentSort,
                      descending: bool, query: str | None, pages: int) -> None:
        store = self.incidex.store
        latest = store.latest_analysis_pk()
        loaded = [store.incidents_page(sort=sort, descending=descending, query=query,
                                       limit=self.page_size, from_end=direction == "last")]
        while len(loaded) < pages and loaded[-1].next_cursor is not None:
            loaded.append(store.incidents_page(sort=sort, descending=descending, query=query,
                                               limit=self.page_size,
                                               after=loaded[-1].next_cursor))
        self._post_unless_cancelled(IncidentsPageLoaded(generation, direction, loaded, latest))

    @work(thread=True, group="page", exit_on_error=False)
    def _fetch_edge(self, generation: int, edge: PageDirection, cursor: PageCursor,
                    query: str | None) -> None:
        after, before = (cursor, None) if edge == "next" else (None, cursor)
        page = self.incidex.store.incidents_page(
            sort=cursor.sort, descending=cursor.descending, query=query, limit=self.page_size,
            after=after, before=before)
        self.post_message(IncidentsPageLoaded(generation, edge, [page]))

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def _count(self, generation: int, query: str | None) -> None:
        total = self.incidex.store.count_incidents(query)
        self._post_unless_cancelled(IncidentsCounted(generation, total))

    @work(thread=True, group="import", exit_on_error=False)
    def _import(self, path: Path) -> None:
        def progress(done: int, total: int, tally: ImportTally) -> None:
            self.post_message(ImportProgressed(done, total, tally.saved + tally.duplicates,
                                               len(tally.errors)))

        settings = self.incidex.settings
        tally = import_file(self.incidex.store, path, settings.save_batch_size, progress,
                            self.task_stop)
        self.post_message(ImportFinished(path, tally.saved, tally.duplicates, tally.errors))

    @work(thread=True, group="demo", exit_on_error=False)
    def _fill_demo(self, count: int) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(DemoFillProgressed(done, total))

        saved = fill_demo(self.incidex.store, count, 0, self.task_stop, progress)
        self.post_message(DemoFillFinished(saved, count))

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self, previous: int) -> None:
        store = self.incidex.store
        latest = store.latest_analysis_pk()
        if latest != previous:
            self.post_message(NewAnalysesNoticed(latest, previous,
                                                 store.incidents_new_since(previous)))

    @work(thread=True, group="similar-counts", exit_on_error=False)
    def _similar_counts(self, incident_ids: list[str]) -> None:
        self.post_message(SimilarCountsLoaded(
            self.incidex.store.known_similar_counts(incident_ids)))

    @work(thread=True, exclusive=True, group="warm", exit_on_error=False)
    def _warm(self, incident_ids: list[str], stop: threading.Event) -> None:
        self.incidex.store.warm_similar(incident_ids, stop)
        self.post_message(CacheWarmed(incident_ids, stop.is_set()))
