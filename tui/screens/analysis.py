"""One incident: its text, every analysis of it, and the chosen analysis as a tree or as JSON."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker

from store import (
    AnalysisRecord,
    IncidentDetail,
    safe_name,
    schema_key_order,
    write_private_file,
)
from tui.importing import write_export
from tui.incident_export import incident_json, incident_markdown
from tui.messages import AnalysisExported, ExportWouldOverwrite, IncidentLoaded, ViewerFileReady
from tui.screens.base import IncidexScreen
from tui.screens.choose_analysis import ChooseAnalysisScreen
from tui.screens.compare import CompareScreen, compare_rows
from tui.screens.confirm import ConfirmScreen
from tui.screens.import_file import PathPromptScreen
from widgets.format import cost, printable, severity_style, timestamp, tokens
from widgets.json_view import READ_FIRST, JsonView
from widgets.plain_input import PlainInput
from widgets.stored_text import stored

# How long typing must pause before the search runs (a search relabels the whole tree).
SEARCH_PAUSE_SECONDS = 0.15


class AnalysisScreen(IncidexScreen):
    """The incident header, the list of its analyses, and one analysis' JSON."""

    SUB_TITLE = "analysis"
    # Below 30 rows the incident header shrinks to its first two lines (i shows it all) and
    # below 100 columns the list of analyses narrows, so the analysis itself keeps the room.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    TYPING_ACTIONS: ClassVar[frozenset[str]] = frozenset({"search"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="analysis.back"),
        # The footer shows what fits in 80 columns beside the app's keys; the rest are under ?.
        Binding("slash", "search", "Search", show=False, id="analysis.search", priority=True),
        Binding("v", "toggle_view", "Tree/JSON", id="analysis.toggle_view"),
        Binding("i", "toggle_header", "Whole incident text", show=False, id="analysis.header"),
        Binding("y", "copy", "Copy JSON", show=False, id="analysis.copy"),
        Binding("Y", "copy_id", "Copy incident id", show=False, id="analysis.copy_id"),
        Binding("e", "export", "Export", show=False, id="analysis.export"),
        Binding("o", "open_outside('PAGER')", "Open in $PAGER", show=False,
                id="analysis.pager"),
        Binding("O", "open_outside('EDITOR')", "Open in $EDITOR (read-only)", show=False,
                id="analysis.editor"),
        Binding("c", "compare", "Compare with another analysis", show=False,
                id="analysis.compare"),
        Binding("E", "export_incident", "Export incident (JSON or Markdown)", show=False,
                id="analysis.export_incident"),
        Binding("f", "similar", "Similar", id="analysis.similar"),
        # Listed under ? and in the palette: in the footer it pushed q and ? off 80 columns.
        Binding("a", "analyze", "Analyse again", show=False, id="analysis.analyze"),
        # While a search is active n and N walk its matches (as in less and vim); ] and [ always
        # switch analyses, and n and p do when no search is active.
        Binding("n", "next_match(1)", "Next match (no search: next analysis)", show=False,
                id="analysis.next_match"),
        Binding("N", "next_match(-1)", "Previous match", show=False,
                id="analysis.previous_match"),
        Binding("right_square_bracket", "step(1)", "Next analysis", show=False,
                id="analysis.next"),
        Binding("p,left_square_bracket", "step(-1)", "Previous analysis", show=False,
                id="analysis.previous"),
        Binding("plus,equals_sign", "expand_all", "Expand all", show=False,
                id="analysis.expand_all"),
        Binding("minus", "collapse_all", "Collapse all", show=False,
                id="analysis.collapse_all"),
    ]

    def __init__(self, incident_id: str, select_analysis_id: str | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.select_analysis_id = select_analysis_id
        self.analysing = False
        self.detail: IncidentDetail | None = None
        self.analyses: list[AnalysisRecord] = []
        self.current: AnalysisRecord | None = None
        self.loaded = False
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        """Header, incident text, analyses beside the JSON view, footer."""
        yield Header()
        with VerticalScroll(id="incident-header"):
            yield Static(stored(self.incident_id, "bold"), id="incident-text")
        with Horizontal(id="analysis-body"):
            yield OptionList(id="analyses")
            yield JsonView(id="analysis-json")
        yield Static(id="analysis-search-status")
        yield PlainInput(placeholder="search this analysis as you type (Enter or Esc closes)",
                         id="analysis-search", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Load the incident in the background."""
        self.show_loading_after(self.query_one("#analysis-body"), lambda: not self.loaded)
        self.query_one("#analyses", OptionList).border_title = "Analyses"
        self.query_one("#analysis-search").display = False
        self.query_one("#analysis-search-status").display = False
        self._load(self.incident_id)

    def on_incident_loaded(self, message: IncidentLoaded) -> None:
        """Show the incident and its newest (or the asked-for) analysis."""
        self.loaded = True
        self.query_one("#analysis-body").loading = False
        self.detail, self.analyses = message.detail, message.analyses
        self.query_one("#incident-text", Static).update(_header(self.incident_id, self.detail))
        options = self.query_one("#analyses", OptionList)
        options.clear_options()
        options.add_options([Option(_analysis_label(record), id=record.analysis_id)
                             for record in self.analyses])
        self._title_analyses()
        self.current = None
        if self.analyses:
            wanted = [record.analysis_id for record in self.analyses]
            chosen = self.select_analysis_id
            options.highlighted = wanted.index(chosen) if chosen in wanted else 0
            self._show(self.analyses[options.highlighted])
            self.query_one(JsonView).focus_view()
        else:
            self.query_one(JsonView).update({}, label="no analysis yet: press a to run one")

    def _title_analyses(self) -> None:
        running = " · analysing…" if self.analysing else ""
        self.query_one("#analyses", OptionList).border_title = Text(
            f"Analyses ({len(self.analyses)}){running}")

    def show_analysing(self, running: bool) -> None:
        """Show (or stop showing) that a new analysis of this incident is being made."""
        self.analysing = running
        self._title_analyses()

    def reload(self, select_analysis_id: str | None = None) -> None:
        """Load the incident again and highlight one analysis (a new one, typically)."""
        self.select_analysis_id = select_analysis_id
        self._load(self.incident_id)

    def worker_ended_early(self, worker: Worker[object]) -> None:
        """Stop the loading indicator."""
        self.loaded = True
        self.query_one("#analysis-body").loading = False

    @on(OptionList.OptionHighlighted, "#analyses")
    def _analysis_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index < len(self.analyses):
            self._show(self.analyses[event.option_index])

    def _show(self, record: AnalysisRecord) -> None:
        if record is self.current:
            return
        self.current = record
        self.query_one(JsonView).update(
            record.analysis, label=f"{record.model_name} analysis",
            key_order=schema_key_order(record.analysis.get("schema_version")))
        self._title_matches()
        self.sub_title = printable(f"{self.incident_id} · {record.model_name} · "
                                   f"{timestamp(record.created_at)}", one_line=True)

    @on(Input.Changed, "#analysis-search")
    def _search_typed(self, event: Input.Changed) -> None:
        """Search as the analyst types, once typing pauses (a large analysis takes a while)."""
        event.stop()
        if self._search_timer is not None:
            self._search_timer.stop()
        query = event.value.strip()
        self._search_timer = self.set_timer(SEARCH_PAUSE_SECONDS, lambda: self._search_now(query))

    @on(Input.Submitted, "#analysis-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#analysis-search", Input).display = False
        self._search_now(event.value.strip())
        self.query_one(JsonView).focus_view()

    def _search_now(self, query: str) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        view = self.query_one(JsonView)
        if query != view.query_text:
            view.search(query)
        self._title_matches()

    def _title_matches(self) -> None:
        view = self.query_one(JsonView)
        status = self.query_one("#analysis-search-status", Static)
        status.display = bool(view.query_text)
        count = view.match_count
        where = f"match {view.match_index + 1} of {count}" if count else "no match"
        status.update(Text.assemble(
            ("/", "bold"), (printable(view.query_text, one_line=True), "bold"),
            f"  {where}  ", ("n/N next/previous · Esc clears", "dim")))

    def action_search(self) -> None:
        """Open the search line below the analysis."""
        search_line = self.query_one("#analysis-search", Input)
        search_line.value = self.query_one(JsonView).query_text
        search_line.display = True
        self.focus_now(search_line)

    def action_next_match(self, delta: int) -> None:
        """Go to the next (or previous) match; with no search active, n shows the next analysis."""
        view = self.query_one(JsonView)
        if view.query_text:
            view.go_to_match(delta)
            self._title_matches()
        elif delta > 0:
            self.action_step(1)

    def action_expand_all(self) -> None:
        """Open every branch of the tree."""
        self.query_one(JsonView).expand_all()

    def action_collapse_all(self) -> None:
        """Close every branch of the tree below the top-level keys."""
        self.query_one(JsonView).collapse_all()

    def action_back(self) -> None:
        """Close the search line, else clear the search, else return to where the analyst was."""
        search_line = self.query_one("#analysis-search", Input)
        view = self.query_one(JsonView)
        if search_line.display:
            search_line.display = False
            view.focus_view()
        elif view.query_text:
            view.clear_search()
            self._title_matches()
        else:
            self.dismiss()

    def action_toggle_header(self) -> None:
        """Show the incident's whole text above the analysis, or only its first two lines."""
        self.toggle_class("-header-open")

    def action_toggle_view(self) -> None:
        """Flip between the tree and the highlighted JSON (a search follows to the other view)."""
        view = self.query_one(JsonView)
        view.toggle()
        if view.query_text:
            view.go_to_match(0)
            self._title_matches()

    def action_step(self, delta: int) -> None:
        """Show the next or previous analysis."""
        options = self.query_one("#analyses", OptionList)
        if self.analyses:
            current = options.highlighted or 0
            options.highlighted = max(0, min(len(self.analyses) - 1, current + delta))

    def action_copy(self) -> None:
        """Copy the shown analysis as JSON to the clipboard (OSC 52)."""
        if self.current is None:
            self.notify("No analysis to copy", severity="warning")
            return
        text = self.query_one(JsonView).text
        self._audit_copy(self.incident_id)
        self.send_to_clipboard(text, f"{len(text):,} characters of JSON", "e exports to a file")

    def action_copy_id(self) -> None:
        """Copy the incident id to the clipboard (OSC 52)."""
        self.send_to_clipboard(self.incident_id, printable(self.incident_id, one_line=True),
                               "it is in the header to copy by hand")

    def action_export(self) -> None:
        """Ask where to write the analysis, then write it in the background."""
        if self.current is None:
            self.notify("No analysis to export", severity="warning")
            return
        name = f"{safe_name(self.incident_id)}-{self.current.analysis_id}.json"
        default = self.incidex.data_dir / "exports" / name
        prompt = PathPromptScreen("Export analysis", "Enter writes the JSON there, Esc cancels.",
                                  str(default))
        text = self.query_one(JsonView).text

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._export(path, text + "\n", form="analysis json file")

        self.app.push_screen(prompt, chosen)

    def action_export_incident(self) -> None:
        """Ask where to write the whole incident (.md for Markdown, else JSON), then write it."""
        if self.detail is None:
            self.notify("No incident to export", severity="warning")
            return
        detail, analyses = self.detail, list(self.analyses)
        default = self.incidex.data_dir / "exports" / f"{safe_name(self.incident_id)}.json"
        prompt = PathPromptScreen(
            "Export incident", "The incident, every analysis and its usage. A name ending in .md "
            "writes Markdown, any other JSON. Enter writes, Esc cancels.", str(default))

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            markdown = path.suffix.lower() in (".md", ".markdown")
            self._export(path, (incident_markdown if markdown else incident_json)(detail, analyses),
                         form=f"incident {'markdown' if markdown else 'json'} file")

        self.app.push_screen(prompt, chosen)

    def on_analysis_exported(self, message: AnalysisExported) -> None:
        """Say where the file went."""
        self.notify(f"Wrote {message.path}", title="Exported")

    def action_compare(self) -> None:
        """Compare the shown analysis with another: the only other one, or one picked from a
        list when there are more."""
        if self.current is None or len(self.analyses) < 2:
            self.notify("Comparing needs two analyses of this incident", severity="warning")
            return
        current = self.current
        others = [(index, _analysis_label(record)) for index, record in enumerate(self.analyses)
                  if record is not current]
        if len(others) == 1:
            self._compare(current, self.analyses[others[0][0]])
            return

        def chosen(index: int | None) -> None:
            if index is not None:
                self._compare(current, self.analyses[index])

        title = f"Compare {current.model_name} · {timestamp(current.created_at)} with"
        self.app.push_screen(ChooseAnalysisScreen(printable(title, one_line=True), others),
                             chosen)

    def _compare(self, left: AnalysisRecord, right: AnalysisRecord) -> None:
        key_order = schema_key_order(left.analysis.get("schema_version")) or READ_FIRST
        rows = compare_rows(left.analysis, right.analysis, key_order)
        self.app.push_screen(CompareScreen(_compare_title(left), _compare_title(right), rows))

    def action_open_outside(self, variable: str) -> None:
        """Write the shown analysis to a private temporary file, then open it in $PAGER or
        $EDITOR."""
        if self.current is None:
            self.notify("No analysis to open", severity="warning")
            return
        name = f"{safe_name(self.incident_id)}-{self.current.analysis_id}.json"
        self._write_for_viewer(name, self.query_one(JsonView).text + "\n", variable)

    def on_viewer_file_ready(self, message: ViewerFileReady) -> None:
        """Hand the terminal to the pager or editor until it exits, then delete the file."""
        command = _viewer_command(message.variable)
        try:
            with self.app.suspend():
                # The app is suspended: waiting here is the point, as in lazygit.
                returncode = subprocess.call([*command, str(message.path)])
        except SuspendNotSupported:
            self.notify("This terminal cannot be handed over to another program",
                        severity="error")
            returncode = 0
        except OSError as error:
            self.notify(printable(f"cannot run {command[0]}: {error.strerror or error}",
                                  one_line=True), severity="error")
            returncode = 0
        if returncode != 0:
            self.notify(printable(f"{command[0]} exited with status {returncode}",
                                  one_line=True), severity="warning")
        if message.variable == "EDITOR":
            # Analyses are append-only: what the model said is kept as it said it.
            self.notify("Edits made there are not saved: stored analyses are read-only. To keep "
                        "an edited copy, e exports the analysis to a file.", title="Editor",
                        timeout=10)
        self._remove_viewer_file(message.path)

    def on_export_would_overwrite(self, message: ExportWouldOverwrite) -> None:
        """Ask before replacing an existing file; write only on yes."""
        question = Text.assemble(printable(str(message.path), one_line=True), (" exists.", "bold"),
                                 " Replace it?")

        def answered(replace: bool | None) -> None:
            if replace:
                self._export(message.path, message.text, overwrite=True)
            else:
                self.notify("Export cancelled: the file was left as it was", title="Export")

        self.app.push_screen(ConfirmScreen("Replace the file?", question), answered)

    def action_analyze(self) -> None:
        """Run a new analysis of this incident with the chat model."""
        self.incidex.analyze_incident(self.incident_id)

    def action_similar(self) -> None:
        """Find incidents similar to this one."""
        title = self.detail.title if self.detail else None
        self.incidex.open_similar(incident_id=self.incident_id, title=title)

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _load(self, incident_id: str) -> None:
        detail, analyses = self.incidex.store.open_incident(incident_id)
        self.post_message(IncidentLoaded(incident_id, detail, analyses))

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, path: Path, text: str, overwrite: bool = False, form: str = "") -> None:
        if not overwrite:
            self.incidex.store.authorise_export(self.incident_id, form)
        if not overwrite and path.expanduser().exists():
            self.post_message(ExportWouldOverwrite(path, text))
            return
        self.post_message(AnalysisExported(write_export(path, text)))


    @work(thread=True, group="export", exit_on_error=False)
    def _audit_copy(self, incident_id: str) -> None:
        self.incidex.store.authorise_export(incident_id, "clipboard copy")

    @work(thread=True, group="viewer", exit_on_error=False)
    def _write_for_viewer(self, name: str, text: str, variable: str) -> None:
        folder = Path(tempfile.mkdtemp(prefix="incidex-view-"))  # created 0700
        path = write_private_file(folder / name, text.encode("utf-8"))
        self.post_message(ViewerFileReady(path, variable))

    @work(thread=True, group="viewer", exit_on_error=False)
    def _remove_viewer_file(self, path: Path) -> None:
        shutil.rmtree(path.parent, ignore_errors=True)


def _compare_title(record: AnalysisRecord) -> str:
    return f"{record.model_name} · {timestamp(record.created_at)}"


def _viewer_command(variable: str) -> list[str]:
    """The pager ($PAGER, else less) or editor ($VISUAL, $EDITOR, else vi) as argv."""
    if variable == "PAGER":
        chosen = os.environ.get("PAGER") or "less"
    else:
        chosen = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shlex.split(chosen) or ["less"]


def _header(incident_id: str, detail: IncidentDetail | None) -> Group:
    if detail is None:
        return Group(stored(f"{incident_id}: no such incident in this store", "bold red"))
    # One line each, so that the two lines a short terminal shows are always these two.
    title = Text.assemble(stored(detail.incident_id, "bold", one_line=True), "  ",
                          stored(detail.title, "bold", one_line=True),
                          no_wrap=True, overflow="ellipsis")
    dates = Text(f"created {timestamp(detail.created_at)} · updated "
                 f"{timestamp(detail.updated_at)} · i: whole text", style="dim",
                 no_wrap=True, overflow="ellipsis")
    parts = [title, dates, stored(detail.description or "(no description)")]
    if detail.unreadable:
        parts[2] = stored(f"(text unreadable: {detail.unreadable})", "bold red")
    if detail.initial_findings:
        parts.append(Text.assemble(("Findings: ", "bold"), stored(detail.initial_findings)))
    return Group(*parts)


def _analysis_label(record: AnalysisRecord) -> Text:
    severity = printable(record.severity or "–", one_line=True)
    used = None
    if record.input_tokens is not None or record.output_tokens is not None:
        used = (record.input_tokens or 0) + (record.output_tokens or 0)
    return Text.assemble(
        stored(record.model_name, "bold", one_line=True), "  ",
        (severity, severity_style(severity)), "\n",
        (timestamp(record.created_at), "dim"), "\n",
        "no usage recorded" if used is None else f"{tokens(used)} tok · {cost(record.cost_usd)}",
    )
