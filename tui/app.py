"""The incidex terminal app: global keys, screen navigation and the worker-error handler."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.markup import escape
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState

from store import (
    Action,
    Settings,
    SettingsInvalid,
    StoreError,
    StoreUnavailable,
    data_directory,
    load_view_state,
    save_view_state,
)
from tui.commands import IncidentCommands, IncidexCommands, PaletteCommand
from tui.exit_codes import ExitCode
from tui.importing import UserFacingError
from tui.messages import (
    AnalysisEstimated,
    AnalysisFailed,
    AnalysisRan,
    BackupsRan,
    VectorsFilled,
)
from tui.permissions import signed_in_line
from tui.screens.incident_list import IncidentListScreen
from widgets.format import money, printable

if TYPE_CHECKING:
    from store import FillProgress, IncidentSummary, Store
    from tui.screens.help import Section

# The other screens (and pygments, plotext) are imported when first opened, and the store
# itself (SQLAlchemy, the tables) in a worker once the first frame is up: incidex paints at once.

DARK, LIGHT = "textual-dark", "textual-light"
SNAPSHOT_SECONDS = 300.0
FILL_CHECK_SECONDS = 5.0  # how often the app looks for vectors left pending
FILL_RETRY_SECONDS = 60.0  # how long it waits after the embedder failed
# Seconds after the store opened that the background work starts even if no rows were shown.
BACKGROUND_AT_THE_LATEST = 3.0


class IncidexApp(App[ExitCode]):
    """Incidents, analyses, similar incidents and costs, keyboard first."""

    CSS_PATH = "app.tcss"
    TITLE = "incidex"
    COMMANDS = App.COMMANDS | {IncidexCommands, IncidentCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("colon", "jump", "Go to id", id="app.jump"),
        Binding("u", "usage", "Usage", id="app.usage"),
        Binding("t", "toggle_theme", "Dark/light theme", show=False, id="app.theme"),
    ]

    def __init__(self, store: Store | None, settings: Settings, *,
                 open_store: Callable[[], Store] | None = None,
                 now: Callable[[], datetime] | None = None, poll_seconds: float | None = 2.0,
                 warm_cache: bool = True, page_size: int = 100, cursor_blink: bool = True,
                 demo_count: int = 1000, data_dir: Path | None = None,
                 view_state: dict[str, Any] | None = None,
                 shell_prefix: str | None = None, auto_backup: bool | None = None,
                 fill_vectors: bool = True) -> None:
        """`store` is an open store; or None, and `open_store` opens it in a worker once the
        first frame is painted (the list shows “Loading incidents…” until then)."""
        super().__init__()
        if (store is None) == (open_store is None):
            raise ValueError("IncidexApp takes an open store or open_store: one of them")
        self._store = store
        self._open_store = open_store
        self._store_settled = threading.Event()
        self._opening = False
        if store is not None:
            self._store_settled.set()
        self.store_error: Exception | None = None
        self._background_started = False
        self.settings = settings
        self.now = now or (lambda: datetime.now(UTC))
        self.poll_seconds = poll_seconds
        self.warm_cache = warm_cache
        self.auto_backup = settings.backup_auto if auto_backup is None else auto_backup
        self.page_size = page_size
        self.cursor_blink = cursor_blink
        self.demo_count = demo_count
        self.data_dir = data_dir or data_directory(settings)
        self.analysing: set[str] = set()
        self.view_state: dict[str, Any] = dict(view_state or {})
        self.shell_prefix = shell_prefix or shell_command_prefix()
        self.exiting = False
        self.exit_notes: list[str] = []
        self.fill_vectors = fill_vectors
        self.fill_stop = threading.Event()
        # What the background filler last saw: the list's status line shows it.
        self.vectors_pending = VectorsFilled(0, 0)
        self.fill_failed_at = 0.0

    @property
    def store(self) -> Store:
        """The open store. Workers may ask at once: they wait for the opening begun at start.
        The UI thread asks `opened_store` instead (this would wait there too)."""
        if self._store is None:
            self._store_settled.wait()
            if self._store is None:
                raise StoreUnavailable(f"the store did not open: {self.store_error}")
        return self._store

    @property
    def opened_store(self) -> Store | None:
        """The store if it is open; None while it opens (and if it failed to)."""
        return self._store

    def on_mount(self) -> None:
        """Open on the incident list; keep the vector index snapshot fresh in the background."""
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        self.push_screen(IncidentListScreen())
        if self._store is None:
            # After the first frame: the import of the store would hold up its paint.
            self.call_after_refresh(self._open_in_background)
        else:
            self._start_background()
        self.set_interval(SNAPSHOT_SECONDS, self.refresh_index_snapshot)

    def first_rows_shown(self) -> None:
        """The list showed its first page: now load the embedder and run due backups (their
        imports and work would otherwise compete with the first page for the one interpreter)."""
        if not self._background_started and not self.exiting:
            self._start_background()

    def _start_background(self) -> None:
        self._background_started = True
        if self.warm_cache:
            self.prepare_search()
        if self.auto_backup:
            self.run_due_backups()
        if self.fill_vectors:
            self.fill_pending_vectors()
            if self.poll_seconds:
                self.set_interval(max(self.poll_seconds, FILL_CHECK_SECONDS),
                                  self.fill_unless_filling)

    def _open_in_background(self) -> None:
        self.run_worker(self._open, thread=True, group="open", exit_on_error=False)

    def _open(self) -> None:
        """Worker: import and open the store; on failure the app quits and run_app reports."""
        assert self._open_store is not None
        self._opening = True  # from here on the event is set, whatever happens
        try:
            self._store = self._open_store()
        except Exception as error:
            self.store_error = error
        finally:
            self._store_settled.set()
        if self.exiting:
            return  # the analyst quit meanwhile; run_app closes the store
        if self._store is None:
            self.call_from_thread(self.exit, ExitCode.STORE_UNAVAILABLE)
        else:
            self.call_from_thread(self._store_opened)

    def close_store(self) -> None:
        """Close the store once the app has ended (waiting for an opening under way; one that
        never began leaves nothing to close)."""
        if self._opening:
            self._store_settled.wait()
        if self._store is not None:
            self._store.close()

    def _store_opened(self) -> None:
        """Name who is signed in, show the keys their role allows, start the background work."""
        self.mutate_reactive(IncidexApp.sub_title)
        self.refresh_bindings()
        self.set_timer(BACKGROUND_AT_THE_LATEST, self.first_rows_shown)

    def format_title(self, title: str, sub_title: str) -> Content:
        """The header: the screen's title and who is signed in (plain text, never markup)."""
        if self._store is None:
            return super().format_title(title, sub_title)
        who = printable(signed_in_line(self._store))
        return super().format_title(title, f"{sub_title} · {who}" if sub_title else who)

    @work(thread=True, exit_on_error=False, group="prepare")
    def prepare_search(self) -> None:
        """Load the PII scrubber and the embedder now, so the first typed query is quick."""
        self.store.prepare_text_search()

    @work(thread=True, exclusive=True, exit_on_error=False, group="snapshot")
    def refresh_index_snapshot(self) -> None:
        """Rewrite the index snapshot when enough changed (it is also written at exit)."""
        self.store.refresh_index_snapshot()

    @work(thread=True, exclusive=True, exit_on_error=False, group="backup")
    def run_due_backups(self) -> None:
        """`backup run-due` when a snapshot or drill is due (INCIDEX_BACKUP_AUTO=0: never)."""
        from store import Backups  # the backup code loads after the first paint

        backups = Backups(self.store)
        if not backups.due(self.now()):
            return
        try:
            done = backups.run_due(self.settings.backup_keep_daily,
                                   self.settings.backup_keep_weekly, now=self.now())
        except (StoreError, OSError) as error:
            self.post_message(BackupsRan([], error=str(error)))
            return
        self.post_message(BackupsRan(done))

    def on_backups_ran(self, message: BackupsRan) -> None:
        """Say what the background backup did, or why it failed."""
        if message.error is not None:
            self.notify(printable(f"Backup failed: {message.error}", one_line=True),
                        severity="error", markup=False)
        elif message.done:
            self.notify(printable("Backup: " + "; ".join(message.done), one_line=True),
                        markup=False)

    def fill_unless_filling(self) -> None:
        """Look for pending vectors (this app's saves, other processes') unless the filler
        still runs."""
        if self.exiting or any(worker.group == "fill-vectors" and not worker.is_finished
                               for worker in self.workers):
            return
        if (self.vectors_pending.problem is not None
                and time.monotonic() - self.fill_failed_at < FILL_RETRY_SECONDS):
            return  # the embedder failed lately: try again later, not every few seconds
        self.fill_pending_vectors()

    @work(thread=True, exit_on_error=False, group="fill-vectors")
    def fill_pending_vectors(self) -> None:
        """Embed the vectors saves left pending (the local model's), a batch a transaction,
        until none is left; a timer starts it again while the app polls."""
        if not self.store.actor.may(Action.SAVE):
            return

        def report(at: FillProgress) -> None:
            self.post_message(VectorsFilled(at.filled, at.pending, at.texts_per_second,
                                            at.problem))

        self.store.fill_pending_vectors(stop=self.fill_stop, progress=report)

    def on_vectors_filled(self, message: VectorsFilled) -> None:
        """Show how many vectors wait in the incident list's status line."""
        shown, self.vectors_pending = self.vectors_pending, message
        if message.problem is not None:
            self.fill_failed_at = time.monotonic()
        if (shown.pending, shown.problem) == (message.pending, message.problem):
            return
        for screen in self.screen_stack:
            if isinstance(screen, IncidentListScreen):
                screen.show_status()

    def remember_view(self, **changes: Any) -> None:
        """Keep these view choices (the sort) for the next run, written in the background."""
        self.view_state.update(changes)
        self._save_view_state(dict(self.view_state))

    @work(thread=True, exit_on_error=False, group="view-state")
    def _save_view_state(self, state: dict[str, Any]) -> None:
        save_view_state(self.settings, state)

    def shell_command(self, arguments: str) -> str:
        """How the analyst types `incidex ARGUMENTS` in the shell this app was started from."""
        if self.shell_prefix == MAKE_RUN:
            return f'make run ARGS="{arguments}"'
        return f"{self.shell_prefix} {arguments}"

    def action_jump(self) -> None:
        """Ask for an incident id and open it."""
        from tui.screens.jump import JumpScreen

        if not isinstance(self.screen, JumpScreen):
            self.push_screen(JumpScreen(self.incident_ids_like), self._jump_chosen)

    def incident_ids_like(self, typed: str) -> list[str]:
        """Incident ids for a typed id or prefix (called in a thread by the prompt)."""
        return [found.incident_id for found in self.store.find_incidents(typed, limit=5)]

    def _jump_chosen(self, typed: str | None) -> None:
        if typed:
            self._find_for_jump(typed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="jump")
    def _find_for_jump(self, typed: str) -> None:
        found = self.store.find_incidents(typed, limit=5)
        self.call_from_thread(self._jump_found, typed, found)

    def _jump_found(self, typed: str, found: list[IncidentSummary]) -> None:
        exact = [row for row in found if row.incident_id.lower() == typed.lower()]
        if exact or len(found) == 1:
            self.open_analysis((exact or found)[0].incident_id)
        elif found:
            listed = escape(", ".join(row.incident_id for row in found))
            self.notify(f"No incident has the id “{escape(typed)}”; close matches: {listed}",
                        title="Go to incident", severity="warning", timeout=8)
        else:
            self.notify(f"No incident has the id “{escape(typed)}” or mentions it.",
                        title="Go to incident", severity="warning")

    def exit(self, *args: Any, **kwargs: Any) -> None:
        """Quit; keys already typed after the quit no longer open screens, and background
        imports and warming stop at their next batch, so that quitting waits for nothing."""
        self.exiting = True
        self.fill_stop.set()  # a batch being embedded is one transaction: kept or rolled back
        for screen in self.screen_stack:
            if isinstance(screen, IncidentListScreen) and not self.exit_notes:
                self.exit_notes.extend(screen.stop_background())
        super().exit(*args, **kwargs)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Nothing but quitting once the app is quitting; actions the actor's role forbids are
        greyed out."""
        from tui.permissions import action_allowed

        if action != "quit" and self.exiting:
            return False
        return action_allowed(self.opened_store, action)

    def open_analysis(self, incident_id: str, select_analysis_id: str | None = None) -> None:
        """Show an incident and its analyses (the given one highlighted, else the newest)."""
        from tui.screens.analysis import AnalysisScreen

        if not self.exiting:
            self.push_screen(AnalysisScreen(incident_id, select_analysis_id))

    # Running analyses ---------------------------------------------------------------------

    def analyze_incident(self, incident_id: str) -> None:
        """Run a new analysis of an incident with the chat model, in the background."""
        if incident_id in self.analysing:
            self.notify(f"An analysis of {incident_id} is already running", severity="warning")
            return
        self.analysing.add(incident_id)
        self.run_worker(partial(self._analyze, incident_id), thread=True, group="analyze",
                        exit_on_error=False)

    def _analyze(self, incident_id: str) -> None:
        """Worker: prepare (similar incidents, estimate), call the model, save; post each step."""
        try:
            runner = self.store.analysis_runner()
            prepared = runner.prepare(incident_id)
            self.post_message(AnalysisEstimated(incident_id, runner.model, prepared.estimate,
                                                list(prepared.prompt.similar_ids)))
            self.post_message(AnalysisRan(runner.execute(prepared)))
        except StoreError as error:
            self.post_message(AnalysisFailed(incident_id, str(error)))
        except Exception as error:
            self.post_message(AnalysisFailed(incident_id, f"{type(error).__name__}: {error}"))
            raise

    def on_analysis_estimated(self, message: AnalysisEstimated) -> None:
        """Say what the call is expected to cost, and show it running."""
        estimate = message.estimate
        cost = "no price known" if estimate.cost_usd is None else f"≈ {money(estimate.cost_usd)}"
        self.notify(f"{message.model}: about {estimate.input_tokens:,} input and "
                    f"{estimate.output_tokens:,} output tokens, {cost}; "
                    f"{len(message.similar_ids)} similar incident(s) as context",
                    title=f"Analysing {message.incident_id}…", timeout=6, markup=False)
        self._mark_analysing(message.incident_id, True)

    def on_analysis_ran(self, message: AnalysisRan) -> None:
        """Open the new analysis beside the earlier ones, and say what it cost."""
        from tui.screens.analysis import AnalysisScreen

        outcome = message.outcome
        self.analysing.discard(outcome.incident_id)
        self._mark_analysing(outcome.incident_id, False)
        used = ("from the cache, no tokens spent" if outcome.from_cache else
                f"{outcome.input_tokens + outcome.output_tokens:,} tokens, "
                f"{money(outcome.cost_usd)}")
        severity = outcome.analysis.get("severity", "–")
        self.notify(f"{severity} · {used}", title=f"New analysis of {outcome.incident_id}",
                    markup=False)
        for warning in outcome.warnings:
            self.notify(warning, severity="warning", timeout=8, markup=False)
        screen = self.screen
        if isinstance(screen, AnalysisScreen) and screen.incident_id == outcome.incident_id:
            screen.reload(outcome.analysis_id)
        elif isinstance(screen, IncidentListScreen):
            screen.reload_in_place()
            self.open_analysis(outcome.incident_id, outcome.analysis_id)

    def on_analysis_failed(self, message: AnalysisFailed) -> None:
        """Report the failure in one line; nothing was saved."""
        self.analysing.discard(message.incident_id)
        self._mark_analysing(message.incident_id, False)
        self.notify(message.error, title="Analysis failed", severity="error", timeout=10,
                    markup=False)

    def _mark_analysing(self, incident_id: str, running: bool) -> None:
        from tui.screens.analysis import AnalysisScreen

        for screen in self.screen_stack:
            if isinstance(screen, AnalysisScreen) and screen.incident_id == incident_id:
                screen.show_analysing(running)

    def open_similar(self, *, incident_id: str | None = None, title: str | None = None) -> None:
        """Show incidents similar to one incident (or an empty query)."""
        from tui.screens.similar import SimilarScreen

        if not self.exiting:
            self.push_screen(SimilarScreen(incident_id, title))

    def action_help(self) -> None:
        """Show every key."""
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections(self.settings.keymap)))

    def action_usage(self) -> None:
        """Show tokens and costs."""
        from tui.screens.usage import UsageScreen

        if not any(isinstance(screen, UsageScreen) for screen in self.screen_stack):
            self.push_screen(UsageScreen())

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = LIGHT if self.current_theme.dark else DARK

    def action_similar_query(self) -> None:
        """Search similar incidents by a typed description."""
        self.open_similar()

    def palette_commands(self) -> list[PaletteCommand]:
        """Commands with no key of their own."""
        return [PaletteCommand("Search similar incidents by text", "type a description or IOCs",
                               self.action_similar_query)]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Report the app's own failed workers (screens report theirs; the event does not
        bubble), so a failure in the background never vanishes."""
        if event.state == WorkerState.ERROR and event.worker.group != "analyze":
            self.report_worker_error(event.worker)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Show a notification as plain text, whatever `markup` says: messages carry stored
        ids, file names and errors, which must never act as markup or terminal controls."""
        super().notify(printable(message), title=printable(title, one_line=True),
                       severity=severity, timeout=timeout, markup=False)

    def report_worker_error(self, worker: Worker[object]) -> None:
        """Turn a failed worker into a notification; the app carries on."""
        error = worker.error
        if isinstance(error, UserFacingError | StoreError):
            message = str(error)
        else:
            message = f"{type(error).__name__}: {error}"
        self.notify(message, title=f"{worker.group or worker.name} failed", severity="error",
                    timeout=8)


def help_sections(keymap: dict[str, str] | None = None) -> list[Section]:
    """Every screen's keys, for the help screen, with the analyst's remapped keys."""
    return [(where, [_remapped(binding, keymap or {}) for binding in bindings])
            for where, bindings in _default_sections()]


def _remapped(binding: BindingType, keymap: dict[str, str]) -> BindingType:
    if isinstance(binding, Binding) and binding.id in keymap:
        return dataclasses.replace(binding, key=keymap[binding.id])
    return binding


def _default_sections() -> list[Section]:
    """Every screen's keys as the code defines them."""
    from tui.screens.analysis import AnalysisScreen
    from tui.screens.similar import SimilarScreen
    from tui.screens.usage import UsageScreen
    from widgets.filter_bar import FilterBar
    from widgets.incident_table import IncidentTable

    return [
        ("Everywhere", [*IncidexApp.BINDINGS, Binding("ctrl+p", "", "Command palette")]),
        ("Incident list", [*IncidentListScreen.BINDINGS, *IncidentTable.BINDINGS,
                           *FilterBar.BINDINGS]),
        ("Analysis", AnalysisScreen.BINDINGS),
        ("Similar", SimilarScreen.BINDINGS),
        ("Usage", UsageScreen.BINDINGS),
    ]


def binding_ids() -> set[str]:
    """The id of every binding an analyst can remap with INCIDEX_KEYMAP."""
    from tui.screens.help import HelpScreen
    from tui.screens.import_file import ImportErrorsScreen, PathPromptScreen

    bindings = [binding for _where, section in _default_sections() for binding in section]
    for screen in (HelpScreen, PathPromptScreen, ImportErrorsScreen):
        bindings.extend(screen.BINDINGS)
    return {binding.id for binding in bindings if isinstance(binding, Binding) and binding.id}


def check_keymap(keymap: dict[str, str]) -> None:
    """Refuse a keymap that names an unknown binding id or gives a binding no key."""
    if not keymap:
        return  # binding_ids() imports every screen: not worth it at start for nothing
    known = binding_ids()
    for binding_id, keys in keymap.items():
        if binding_id not in known:
            raise SettingsInvalid(f"INCIDEX_KEYMAP: unknown binding id {binding_id!r} "
                                  "(the ? screen lists them)")
        if not [key for key in keys.split(",") if key.strip()]:
            raise SettingsInvalid(f"INCIDEX_KEYMAP: {binding_id!r} has no key")


MAKE_RUN = "make run"


def shell_command_prefix() -> str:
    """What starts incidex from the analyst's shell: `incidex` when it is on PATH, the
    `make run` form inside a checkout run by make, else the full path of this program."""
    if shutil.which("incidex"):
        return "incidex"
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    venv = Path(sys.prefix).resolve()
    if (Path.cwd() / "Makefile").is_file() and venv == (Path.cwd() / ".venv").resolve():
        return MAKE_RUN
    if program is not None and program.name == "incidex":
        return str(program.resolve())
    return "incidex"


def run_app(settings: Settings, *, headless: bool = False) -> ExitCode:
    """Run the app until the analyst quits, then close the store. The app paints first and
    opens the store in a worker; a store that cannot be opened ends it with one line, exit 3."""
    check_keymap(settings.keymap)
    store = None
    terminal = sys.__stderr__ is not None and sys.__stderr__.isatty()
    if not headless and not terminal:
        # No terminal to paint on (Textual draws on stderr): open first, so that a store that
        # cannot be opened is one clean line there rather than after the screen's controls.
        try:
            store = _open_store(settings)
        except StoreUnavailable as error:
            print(f"incidex: {error}", file=sys.stderr)
            return ExitCode.STORE_UNAVAILABLE
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = IncidexApp(store, settings, view_state=load_view_state(settings),
                     open_store=None if store is not None else partial(_open_store, settings))
    try:
        # With its own loop Textual returns without joining the worker threads (asyncio.run
        # waits for each: seconds while the embedder loads). They were told to stop; a batch
        # still being saved is one transaction, so it is rolled back whole, never half-written.
        app.run(loop=loop, headless=headless)
    finally:
        app.close_store()
        loop.close()
    if isinstance(app.store_error, StoreUnavailable):
        print(f"incidex: {app.store_error}", file=sys.stderr)
        return ExitCode.STORE_UNAVAILABLE
    if app.store_error is not None:
        raise app.store_error  # the command turns it into one line and its exit code
    for note in app.exit_notes:
        print(f"incidex: {note}", file=sys.stderr)
    return ExitCode.OK if not app.return_code else ExitCode.INTERNAL_ERROR


def _open_store(settings: Settings) -> Store:
    from store import Store  # SQLAlchemy, the tables, the codecs: loaded off the UI thread

    return Store.open(settings)
