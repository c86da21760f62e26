"""Background work: import with bad records, demo fill, usage, new analyses from elsewhere."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from textual.widgets import DataTable, Input

from tests.conftest import make_record
from tests.tui.conftest import SIZE, fixed_record, make_app, save_records, settle
from tui.screens.import_file import ImportErrorsScreen, ImportPathScreen, complete_path
from tui.screens.incident_list import IncidentListScreen
from tui.screens.usage import UsageScreen
from widgets.usage_chart import UsageChart


def write_import_file(path: Path) -> Path:
    lines = [json.dumps(make_record("IMP-1")), json.dumps(make_record("IMP-2")),
             json.dumps({"incident": {"incident_id": "IMP-BAD"}, "analysis": {},
                         "model_name": ""}),
             "{not json",
             json.dumps(make_record("IMP-3"))]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_import_saves_good_records_and_lists_the_bad(filled_store: Any,
                                                           tui_settings: Any,
                                                           tmp_path: Path) -> None:
    source = write_import_file(tmp_path / "batch.jsonl")
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        list_screen: Any = app.screen
        await pilot.press("i")
        assert isinstance(app.screen, ImportPathScreen)
        app.screen.query_one("#path", Input).value = str(source)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ImportErrorsScreen)
        errors = app.screen.errors
        assert len(errors) == 2
        assert errors[0].startswith("line 3") and "model_name" in errors[0]
        assert errors[1].startswith("line 4") and "invalid JSON" in errors[1]
        assert any("3 saved" in n.message and "2 failed" in n.message
                   for n in app._notifications)
        await pilot.press("escape")
        back_on_the_list = app.screen is list_screen
        assert back_on_the_list
        ids = {row.incident_id for row in list_screen.table.rows}
        assert {"IMP-1", "IMP-2", "IMP-3"} <= ids and "IMP-BAD" not in ids
    assert filled_store.count_incidents() == 13


async def test_importing_a_missing_file_is_a_notification(filled_store: Any, tui_settings: Any,
                                                          tmp_path: Path) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        app.screen.query_one("#path", Input).value = str(tmp_path / "nope.jsonl")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        assert not app.screen.query_one("#task-progress").display
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "no such file" in errors[-1].message


def test_the_path_suggester_completes_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "analyses.jsonl").write_text("")
    assert complete_path(str(tmp_path / "ana")) == str(tmp_path / "analyses.jsonl")
    assert complete_path(str(tmp_path / "exp")) == str(tmp_path / "exports") + "/"
    assert complete_path(str(tmp_path / "zzz")) is None


async def test_an_empty_store_says_how_to_add_data_and_d_fills_it(empty_store: Any,
                                                                  tui_settings: Any) -> None:
    app = make_app(empty_store, tui_settings, demo_count=40)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        message = str(screen.query_one("#empty-message").render())
        assert "incidex demo --count 1000" in message and "incidex --save FILE" in message
        assert screen.query_one("#empty").display and not screen.table.display
        await pilot.press("d")
        await settle(pilot)
        assert not screen.query_one("#empty").display and screen.table.display
        assert len(screen.table.rows) > 0
        assert empty_store.summary().analyses == 40
        assert screen.check_action("fill_demo", ()) is False
        # The table has the keys at once: no Tab needed before arrows, PageDown and Enter.
        assert app.focused is screen.table
        await pilot.press("down", "pagedown")
        assert screen.table.cursor > 1
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "AnalysisScreen"


async def test_an_import_into_an_empty_store_gives_the_table_the_keys(
        empty_store: Any, tui_settings: Any, tmp_path: Path) -> None:
    from tests.tui.conftest import fixed_records

    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(record) for record in fixed_records()))
    app = make_app(empty_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        app.screen.query_one("#path", Input).value = str(source)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, IncidentListScreen) and len(screen.table.rows) == 10
        assert app.focused is screen.table
        await pilot.press("down")
        assert screen.table.cursor == 1


def test_the_empty_store_shows_commands_that_work_where_incidex_was_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tui.app import MAKE_RUN, shell_command_prefix

    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    checkout = Path(sys.prefix).resolve().parent
    monkeypatch.chdir(checkout)
    if (checkout / "Makefile").is_file():  # the tests run from make's .venv in a checkout
        assert shell_command_prefix() == MAKE_RUN
    tool = tmp_path / "bin" / "incidex"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tool.parent))
    assert shell_command_prefix() == "incidex"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "venv" / "bin" / "incidex")])
    assert shell_command_prefix() == str(tmp_path / "venv" / "bin" / "incidex")


async def test_usage_shows_models_days_and_incidents(filled_store: Any, tui_settings: Any
                                                     ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, UsageScreen)
        models = screen.query_one("#usage-models", DataTable)
        keys = {row.value for row in models.rows}
        assert {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama3.1:8b"} == keys
        incidents = screen.query_one("#usage-incidents", DataTable)
        assert incidents.row_count == 10
        totals = str(screen.query_one("#usage-totals").render())
        assert "11 calls" in totals and "Cache" in totals
        chart = screen.query_one("#usage-chart", UsageChart)
        assert len(chart.shown_days) == 30
        assert chart.shown_days[-1][0] == date(2026, 11, 21)
        assert sum(tokens for _day, tokens, _cost in chart.shown_days) > 0
        await pilot.press("d")
        await settle(pilot)
        assert screen.days == 90 and len(chart.shown_days) == 90
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "AnalysisScreen"


async def test_an_analysis_saved_by_another_process_appears(filled_store: Any,
                                                            tui_settings: Any) -> None:
    from store.store import Store

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("j", "j")
        assert screen.table.selected.incident_id == "INC-0003"
        with Store.open(tui_settings) as other:
            save_records(other, [make_record("NEW-1", usage={
                "input_tokens": 10, "output_tokens": 5, "start_time": "2026-11-21T11:58:00Z",
                "end_time": "2026-11-21T11:59:00Z"})])
        screen.check_for_new_analyses()
        await settle(pilot)
        assert screen.table.rows[0].incident_id == "NEW-1"
        assert screen.table.selected.incident_id == "INC-0003"
        assert "of 11" in str(screen.query_one("#list-status").render())


async def test_new_incidents_show_at_the_top_with_a_notice_and_n_goes_to_them(
        filled_store: Any, tui_settings: Any) -> None:
    from store.store import Store

    app = make_app(filled_store, tui_settings, view_state={"sort": "created"})
    async with app.run_test(size=(100, 16)) as pilot:  # fewer lines than incidents
        await settle(pilot)
        screen = app.screen
        await pilot.press("j", "j")
        reading = screen.table.selected.incident_id
        with Store.open(tui_settings) as other:
            save_records(other, [make_record(f"NEW-{n}", usage={
                "input_tokens": 10, "output_tokens": 5, "start_time": "2026-11-21T11:58:00Z",
                "end_time": "2026-11-21T11:59:00Z", "request_id": f"new-{n}"})
                for n in range(3)])
            # A new analysis of a known incident is not a new incident.
            save_records(other, [fixed_record(6, hours_earlier=-90, summary_suffix=" Again.")])
        screen.check_for_new_analyses()
        await settle(pilot)
        assert [row.incident_id for row in screen.table.rows[:3]] == ["NEW-2", "NEW-1", "NEW-0"]
        assert screen.table.top == 0  # the new rows are on screen
        assert screen.table.selected.incident_id == reading  # the cursor did not move away
        notes = [note.message for note in app._notifications]
        assert any("3 new incidents at the top; n goes to them" in note for note in notes)
        assert "3 new (n shows them)" in str(screen.query_one("#list-status").render())
        await pilot.press("n")
        await settle(pilot)
        assert (screen.sort, screen.descending) == ("updated", True)
        assert screen.table.selected.incident_id == screen.table.rows[0].incident_id
        assert screen.new_incidents == 0
        assert "new (n" not in str(screen.query_one("#list-status").render())


async def test_the_poll_timer_notices_new_analyses_by_itself(
        filled_store: Any, tui_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    noticed = asyncio.Event()
    original = IncidentListScreen.on_new_analyses_noticed

    def spy(screen: IncidentListScreen, message: Any) -> None:
        original(screen, message)
        noticed.set()

    monkeypatch.setattr(IncidentListScreen, "on_new_analyses_noticed", spy)
    app = make_app(filled_store, tui_settings, poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        save_records(filled_store, [fixed_record(4, hours_earlier=-49, summary_suffix=" Again.")])
        await asyncio.wait_for(noticed.wait(), timeout=10)
        await settle(pilot)
        assert screen.table.rows[0].incident_id == "INC-0005"
        assert screen.table.rows[0].analysis_count == 2


async def test_quitting_during_a_demo_fill_stops_it(empty_store: Any, tui_settings: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    progressed = asyncio.Event()
    original = IncidentListScreen.on_demo_fill_progressed

    def spy(screen: IncidentListScreen, message: Any) -> None:
        original(screen, message)
        progressed.set()

    monkeypatch.setattr(IncidentListScreen, "on_demo_fill_progressed", spy)
    app = make_app(empty_store, tui_settings, demo_count=200_000)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await asyncio.wait_for(progressed.wait(), timeout=60)
        assert app.screen.query_one("#task-progress").display
        await pilot.press("q")
    assert 0 < empty_store.summary().analyses < 200_000
    assert app.exit_notes == ["the demo fill stopped when you quit; what it saved is kept"]


async def test_a_failing_app_worker_becomes_a_notification(empty_store: Any, tui_settings: Any
                                                           ) -> None:
    # A PII key that is too short makes the app's own start-up worker (which loads the
    # scrubber) fail: the analyst must hear of it rather than lose it silently.
    broken = tui_settings.model_copy(update={"pii_key": SecretStr("short")})
    empty_store.settings = broken
    app = make_app(empty_store, broken, warm_cache=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        failures = [n for n in app._notifications if n.title == "prepare failed"]
        assert len(failures) == 1
        assert "PII key" in failures[0].message


async def test_an_unpriced_model_reads_the_same_on_every_screen(filled_store: Any,
                                                                tui_settings: Any) -> None:
    from textual.widgets import OptionList

    from tui.screens.analysis import AnalysisScreen
    from widgets.cost_panel import CostPanel

    # llama3.1:8b (INC-0008) has no price: never "$0.0000" on one screen and "–" on another.
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        models = app.screen.query_one("#usage-models", DataTable)
        row = models.get_row("llama3.1:8b")
        assert str(row[-1]) == "unpriced"
        incidents = app.screen.query_one("#usage-incidents", DataTable)
        assert str(incidents.get_row("INC-0008")[-1]) == "unpriced"
        assert "calls without a price" in str(app.screen.query_one(CostPanel).render())
        await pilot.press("escape", "colon", *"INC-0008", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen)
        label = str(app.screen.query_one("#analyses", OptionList).get_option_at_index(0).prompt)
        assert label.endswith("tok · unpriced")
