"""The incident list's background work: import, demo fill, new-analysis polling, cache warming."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from store import IncidentSort, PageCursor
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
from widgets.incident_table import IncidentTable
from widgets.stored_text import stored


class ListState(IncidexScreen):
    """What the incident list's parts share: the window, the table and how to reload."""

    window: PageWindow
    generation: int
    filter_text: str | None
    latest_pk: int | None
    loaded: bool
    busy: set[str]
    sort: IncidentSort
    task_stop: threading.Event

    @property
    def page_size(self) -> int:
        """Rows fetched per keyset page."""
        return self.incidex.page_size

    @property
    def table(self) -> IncidentTable:
        """The incident table."""
        return self.query_one("#incidents", IncidentTable)

    def load(self, direction: PageDirection, pages: int = 1) -> None:
        """(Re)load the window; the screen implements it."""
        raise NotImplementedError

    def count(self) -> None:
        """Count the listed incidents again; the screen implements it."""
        raise NotImplementedError

    def stop_warming(self) -> None:
        """Let the analyst's own request have the database; WatchAndWarm implements it."""

    def reload_in_place(self) -> None:
        """Reload as many pages as are held, keeping the cursor on its incident."""
        self.load("reload", pages=max(1, len(self.window.pages)))


class ImportAndDemo(ListState):
    """Import a --save file, or fill an empty store with demo data, with a progress bar."""

    def action_import_file(self) -> None:
        """Ask for a file, then import it in the background."""
        self.app.push_screen(ImportPathScreen(), self._import_chosen)

    def _import_chosen(self, path: Path | None) -> None:
        if path is not None:
            self._start_task("import", f"Importing {path.name}…")
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

    def on_demo_fill_progressed(self, message: DemoFillProgressed) -> None:
        """Advance the progress bar."""
        self.query_one("#task-progress", ProgressBar).update(total=message.total,
                                                             progress=message.done)

    def on_demo_fill_finished(self, message: DemoFillFinished) -> None:
        """Show the new incidents."""
        self.end_task("demo")
        self.notify(f"{message.saved:,} demo analyses saved", title="Demo data")
        self.load("first")

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


class WatchAndWarm(ListState):
    """Notice other processes' saves, show similar counts, warm the similar cache."""

    _warm_stop: threading.Event
    _warmed_top: str | None

    def check_for_new_analyses(self) -> None:
        """Ask the store (in a worker) whether analyses were saved since the last look."""
        if self.latest_pk is not None:
            self._poll(self.latest_pk)

    def on_new_analyses_noticed(self, message: NewAnalysesNoticed) -> None:
        """Refresh the first pages when the analyst is looking at them."""
        if self.latest_pk is not None and message.latest_pk <= self.latest_pk:
            return
        self.latest_pk = message.latest_pk
        if self.window.at_top or not self.window.rows:
            self.reload_in_place()
        else:
            self.count()

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

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self, previous: int) -> None:
        latest = self.incidex.store.latest_analysis_pk()
        if latest != previous:
            self.post_message(NewAnalysesNoticed(latest, previous))

    @work(thread=True, group="similar-counts", exit_on_error=False)
    def _similar_counts(self, incident_ids: list[str]) -> None:
        self.post_message(SimilarCountsLoaded(
            self.incidex.store.known_similar_counts(incident_ids)))

    @work(thread=True, exclusive=True, group="warm", exit_on_error=False)
    def _warm(self, incident_ids: list[str], stop: threading.Event) -> None:
        self.incidex.store.warm_similar(incident_ids, stop)
        self.post_message(CacheWarmed(incident_ids, stop.is_set()))


class WindowFetching(ListState):
    """The reads behind the window: first or last pages, a neighbouring page, the count."""

    def _post_unless_cancelled(self, message: Any) -> None:
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def _fetch_window(self, generation: int, direction: PageDirection, sort: IncidentSort,
                      query: str | None, pages: int) -> None:
        store = self.incidex.store
        latest = store.latest_analysis_pk()
        loaded = [store.incidents_page(sort=sort, query=query, limit=self.page_size,
                                       from_end=direction == "last")]
        while len(loaded) < pages and loaded[-1].next_cursor is not None:
            loaded.append(store.incidents_page(sort=sort, query=query, limit=self.page_size,
                                               after=loaded[-1].next_cursor))
        self._post_unless_cancelled(IncidentsPageLoaded(generation, direction, loaded, latest))

    @work(thread=True, group="page", exit_on_error=False)
    def _fetch_edge(self, generation: int, edge: PageDirection, cursor: PageCursor,
                    sort: IncidentSort, query: str | None) -> None:
        after, before = (cursor, None) if edge == "next" else (None, cursor)
        page = self.incidex.store.incidents_page(sort=sort, query=query, limit=self.page_size,
                                                 after=after, before=before)
        self.post_message(IncidentsPageLoaded(generation, edge, [page]))

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def _count(self, generation: int, query: str | None) -> None:
        total = self.incidex.store.count_incidents(query)
        self._post_unless_cancelled(IncidentsCounted(generation, total))
