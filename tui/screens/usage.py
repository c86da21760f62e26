"""What the analyses cost: totals, dollars per day, per model and the most expensive incidents."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, get_current_worker

from store import Backups, BackupStatus, UsageTotal
from tui.messages import (
    BackupStatusLoaded,
    UsageByDayLoaded,
    UsageByIncidentLoaded,
    UsageTotalsLoaded,
)
from tui.screens.base import IncidexScreen
from widgets.cost_panel import CostPanel, CostTotals
from widgets.fitted_table import FittedTable
from widgets.format import cost, relative_age, tokens
from widgets.stored_text import stored
from widgets.usage_chart import UsageChart

TOP_INCIDENTS = 20
MODEL_HEADERS = ("Model", "Calls", "Tokens", "USD")
INCIDENT_HEADERS = ("Incident", "Calls", "Input tok", "Output tok", "USD")
STALE_AFTER = timedelta(days=1)


class UsageScreen(IncidexScreen):
    """Tokens and dollars by model, by day and by incident, and the cache's savings."""

    SUB_TITLE = "usage"
    # Below 110 columns the chart gives its half to the by-model table, whose dollars matter more.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="usage.back"),
        Binding("d", "toggle_days", "30/90 days", id="usage.days"),
        Binding("r", "refresh", "Refresh", id="usage.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.days = 30
        self.pending: set[str] = set()

    def compose(self) -> ComposeResult:
        """Totals on top, the chart beside the models, the expensive incidents below."""
        yield Header()
        with Vertical(id="usage-body"):
            yield CostPanel(id="usage-totals")
            yield Static("Backups: looking…", id="usage-backup", markup=False)
            with Horizontal(id="usage-top"):
                yield UsageChart(id="usage-chart")
                yield FittedTable(id="usage-models", cursor_type="row", zebra_stripes=True)
            yield FittedTable(id="usage-incidents", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Set up the tables and load the figures."""
        models = self.query_one("#usage-models", FittedTable)
        models.border_title = "By model"
        models.show_rows(MODEL_HEADERS, [])
        incidents = self.query_one("#usage-incidents", FittedTable)
        incidents.border_title = Text(f"Most expensive incidents (top {TOP_INCIDENTS})")
        incidents.show_rows(INCIDENT_HEADERS, [])
        incidents.focus()
        self.action_refresh()

    def on_usage_totals_loaded(self, message: UsageTotalsLoaded) -> None:
        """Fill the totals and the per-model table."""
        self._answered("models", "#usage-totals", "#usage-models")
        self.query_one(CostPanel).update_totals(_totals(message.by_model), message.cache)
        self.query_one("#usage-models", FittedTable).show_rows(MODEL_HEADERS, [
            (total.key, [stored(total.key, one_line=True), Text(f"{total.calls:,}"),
                         Text(tokens(total.total_tokens)),
                         Text(cost(total.cost_usd, total.unpriced_calls, total.calls))])
            for total in message.by_model])

    def on_usage_by_day_loaded(self, message: UsageByDayLoaded) -> None:
        """Draw the chart."""
        self._answered("days", "#usage-chart")
        self.query_one(UsageChart).update_days(
            [(d.day, d.total_tokens, d.cost_usd) for d in message.by_day])

    def on_usage_by_incident_loaded(self, message: UsageByIncidentLoaded) -> None:
        """Fill the most expensive incidents."""
        self._answered("incidents", "#usage-incidents")
        self.query_one("#usage-incidents", FittedTable).show_rows(INCIDENT_HEADERS, [
            (total.key, [stored(total.key, one_line=True), Text(f"{total.calls:,}"),
                         Text(tokens(total.input_tokens)), Text(tokens(total.output_tokens)),
                         Text(cost(total.cost_usd, total.unpriced_calls, total.calls))])
            for total in message.by_incident])

    def on_backup_status_loaded(self, message: BackupStatusLoaded) -> None:
        """Show the age of the last good snapshot and the last drill; warn when stale."""
        line, stale = backup_line(message.status, self.incidex.now())
        status = self.query_one("#usage-backup", Static)
        status.update(line)
        status.set_class(stale, "-stale")

    def _answered(self, part: str, *selectors: str) -> None:
        self.pending.discard(part)
        for selector in selectors:
            self.query_one(selector).loading = False

    def worker_ended_early(self, worker: Worker[object]) -> None:
        """Stop the loading indicator of the part that failed."""
        part = worker.group.removeprefix("usage-")
        selectors = {"models": ("#usage-totals", "#usage-models"), "days": ("#usage-chart",),
                     "incidents": ("#usage-incidents",)}.get(part, ())
        self._answered(part, *selectors)

    @on(DataTable.RowSelected, "#usage-incidents")
    def _incident_chosen(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.incidex.open_analysis(event.row_key.value)

    def action_back(self) -> None:
        """Return to where the analyst came from."""
        self.dismiss()

    def action_toggle_days(self) -> None:
        """Chart the last 30 or the last 90 days."""
        self.days = 90 if self.days == 30 else 30
        self._request("days", "#usage-chart")
        self._load_days(self.days)

    def action_refresh(self) -> None:
        """Load every figure again; each part shows as soon as it arrives."""
        self._request("models", "#usage-totals", "#usage-models")
        self._load_models()
        self._request("days", "#usage-chart")
        self._load_days(self.days)
        self._request("incidents", "#usage-incidents")
        self._load_incidents()
        self._load_backup_status()

    def _request(self, part: str, *selectors: str) -> None:
        self.pending.add(part)
        for selector in selectors:
            self.show_loading_after(self.query_one(selector), lambda: part in self.pending)

    @work(thread=True, exclusive=True, group="usage-models", exit_on_error=False)
    def _load_models(self) -> None:
        store = self.incidex.store
        self.post_message(UsageTotalsLoaded(store.usage_by_model(), store.cache_stats()))

    @work(thread=True, exclusive=True, group="usage-days", exit_on_error=False)
    def _load_days(self, days: int) -> None:
        today = self.incidex.now().date()
        by_day = self.incidex.store.usage_by_day(days, today=today)
        if not get_current_worker().is_cancelled:
            self.post_message(UsageByDayLoaded(by_day))

    @work(thread=True, exclusive=True, group="usage-incidents", exit_on_error=False)
    def _load_incidents(self) -> None:
        self.post_message(UsageByIncidentLoaded(
            self.incidex.store.usage_by_incident(limit=TOP_INCIDENTS)))


    @work(thread=True, exclusive=True, group="usage-backup", exit_on_error=False)
    def _load_backup_status(self) -> None:
        self.post_message(BackupStatusLoaded(Backups(self.incidex.store).status()))


def backup_line(status: BackupStatus, now: datetime) -> tuple[str, bool]:
    """The one-line backup status and whether it is stale (no good snapshot within a day)."""
    last = status.last_good_snapshot
    drill = status.last_drill
    if drill is None:
        drill_text = "no drill yet"
    else:
        drill_text = (f"last drill {'passed' if drill.get('ok') else 'FAILED'} "
                      f"{str(drill.get('started_at', ''))[:10]}")
    if last is None:
        return f"⚠ Backups: no snapshot yet (incidex backup now) · {drill_text}", True
    stale = now - last.taken_at > STALE_AFTER
    age = relative_age(last.taken_at, now)
    if stale:
        return f"⚠ Backups: last good snapshot {age}, over a day old · {drill_text}", True
    return f"Backups: last snapshot {age} · {drill_text}", False


def _totals(by_model: list[UsageTotal]) -> CostTotals:
    return CostTotals(
        calls=sum(t.calls for t in by_model),
        input_tokens=sum(t.input_tokens for t in by_model),
        output_tokens=sum(t.output_tokens for t in by_model),
        cost_usd=sum((t.cost_usd for t in by_model), Decimal(0)),
        unpriced_calls=sum(t.unpriced_calls for t in by_model),
    )
