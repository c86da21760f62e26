"""The incident list: order, filter, sort, moving, opening, theme, help and palette."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import SIZE, make_app, settle
from tui.screens.incident_list import IncidentListScreen


def listed_ids(app: Any) -> list[str]:
    return [row.incident_id for row in app.screen.table.rows]


async def test_the_list_shows_incidents_newest_first(filled_store: Any, tui_settings: Any
                                                     ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        ids = listed_ids(app)
        assert ids[:3] == ["INC-0001", "INC-0002", "INC-0003"]
        assert ids[-1] == "INC-0010"
        second = app.screen.table.rows[1]
        assert (second.latest_severity, second.analysis_count) == ("critical", 2)
        status = str(app.screen.query_one("#list-status").render())
        assert "row 1 of 10" in status and "last update" in status


async def test_slash_filters_by_text_and_escape_clears(filled_store: Any, tui_settings: Any
                                                       ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"ransomware", "enter")
        await settle(pilot)
        assert sorted(listed_ids(app)) == ["INC-0002", "INC-0009"]
        assert app.focused is app.screen.table
        assert "matching text ransomware" in str(app.screen.query_one("#list-status").render())
        await pilot.press("escape")
        await settle(pilot)
        assert len(listed_ids(app)) == 10


async def test_a_filter_matching_nothing_says_so(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"zzzqqq", "enter")
        await settle(pilot)
        assert listed_ids(app) == []
        assert "no incident matches" in str(app.screen.query_one("#list-status").render())
        assert not app.screen.query_one("#empty").display


async def test_s_cycles_the_sort(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.sort == "created"
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.sort == "severity"
        assert listed_ids(app)[:3] == ["INC-0002", "INC-0007", "INC-0009"]
        assert "sorted by severity, worst first" in status_of(app)
        await pilot.press("s", "s", "s")
        await settle(pilot)
        assert app.screen.sort == "incident_id"
        assert listed_ids(app)[0] == "INC-0010"
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.sort == "updated"


def status_of(app: Any) -> str:
    return str(app.screen.query_one("#list-status").render())


async def test_capital_s_reverses_and_the_sort_is_kept_for_the_next_run(
        filled_store: Any, tui_settings: Any) -> None:
    from store import load_view_state

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s", "s", "S")
        await settle(pilot)
        assert (app.screen.sort, app.screen.descending) == ("severity", False)
        # Low first; the whole key reverses, so the earlier update of the two comes first.
        assert listed_ids(app)[:2] == ["INC-0008", "INC-0005"]
        assert "sorted by severity, mildest first" in status_of(app)
    remembered = load_view_state(tui_settings)
    assert remembered == {"sort": "severity", "descending": False}
    again = make_app(filled_store, tui_settings, view_state=remembered)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert listed_ids(again)[:2] == ["INC-0008", "INC-0005"]


async def test_sorts_by_analysis_count_and_cost(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings, view_state={"sort": "analyses"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert listed_ids(app)[0] == "INC-0002"  # the only incident with two analyses
        await pilot.press("s")
        await settle(pilot)
        assert app.screen.sort == "cost"
        costs = [row.cost_usd for row in app.screen.table.rows]
        assert costs == sorted(costs, reverse=True) and costs[0] > 0
        assert "sorted by cost, dearest first" in status_of(app)


async def test_a_broken_state_file_is_ignored(filled_store: Any, tui_settings: Any) -> None:
    from store import load_view_state
    from store.locations import state_file

    path = state_file(tui_settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert load_view_state(tui_settings) == {}
    path.write_text('{"sort": "no-such-sort", "descending": "yes"}')
    app = make_app(filled_store, tui_settings, view_state=load_view_state(tui_settings))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert (app.screen.sort, app.screen.descending) == ("updated", True)
    assert str(path.parent).startswith(str(tui_settings.data_dir.parent / "config"))


async def test_colon_jumps_to_an_incident_by_id_from_anywhere(filled_store: Any,
                                                              tui_settings: Any) -> None:
    from tui.screens.analysis import AnalysisScreen
    from tui.screens.jump import JumpScreen

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press(*"inc-0007", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen)
        assert app.screen.incident_id == "INC-0007"
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("colon", *"INC-0009", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen) and app.screen.incident_id == "INC-0009"


async def test_colon_with_an_unknown_id_says_so_and_lists_close_ids(filled_store: Any,
                                                                    tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"INC-00", "enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        [note] = list(app._notifications)
        assert "No incident has the id “INC-00”" in note.message and "INC-0001" in note.message
        app.clear_notifications()
        await pilot.press("colon", *"NOPE-404", "enter")
        await settle(pilot)
        [note] = list(app._notifications)
        assert "No incident has the id “NOPE-404”" in note.message


async def test_the_jump_prompt_completes_ids_as_you_type(filled_store: Any, tui_settings: Any
                                                         ) -> None:
    from tui.screens.jump import IncidentIdSuggester

    app = make_app(filled_store, tui_settings)
    suggester = IncidentIdSuggester(app.incident_ids_like)
    assert await suggester.get_suggestion("INC-000") == "INC-0001"
    assert await suggester.get_suggestion("inc-000") == "inc-0001"
    assert await suggester.get_suggestion("INC-0007") is None  # complete already
    assert await suggester.get_suggestion("ZZZ") is None


async def test_the_palette_finds_incidents_by_id_and_title(filled_store: Any, tui_settings: Any
                                                           ) -> None:
    from textual.command import CommandPalette

    from tui.screens.analysis import AnalysisScreen

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"cobalt strike")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen) and app.screen.incident_id == "INC-0007"


async def test_f_with_no_incident_says_why_nothing_happens(filled_store: Any,
                                                           tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"zzzqqq", "enter")
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        [note] = list(app._notifications)
        assert "No incident matches “zzzqqq”" in note.message


async def test_f_on_an_empty_store_says_why(empty_store: Any, tui_settings: Any) -> None:
    app = make_app(empty_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        [note] = list(app._notifications)
        assert "no incidents yet" in note.message and "d for demo data" in note.message


async def test_j_k_g_and_capital_g_move_the_cursor(filled_store: Any, tui_settings: Any
                                                   ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.table
        await pilot.press("j", "j", "k")
        assert table.cursor == 1
        await pilot.press("G")
        await settle(pilot)
        assert table.selected.incident_id == "INC-0010"
        await pilot.press("g")
        await settle(pilot)
        assert table.cursor == 0


async def test_enter_opens_the_analysis_and_escape_returns(filled_store: Any,
                                                           tui_settings: Any) -> None:
    from tui.screens.analysis import AnalysisScreen

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen)
        assert app.screen.incident_id == "INC-0002"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        assert app.screen.table.cursor == 1


async def test_t_toggles_dark_and_light(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dark = app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark is not dark
        await pilot.press("t")
        assert app.current_theme.dark is dark


async def test_question_mark_lists_every_screen_s_keys(filled_store: Any, tui_settings: Any
                                                      ) -> None:
    from tui.screens.help import HelpScreen

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        titles = [title for title, _bindings in app.screen.sections]
        assert titles == ["Everywhere", "Incident list", "Analysis", "Similar", "Usage"]
        await pilot.press("escape")
        assert isinstance(app.screen, IncidentListScreen)


async def test_the_palette_reaches_the_screen_s_actions(filled_store: Any, tui_settings: Any
                                                        ) -> None:
    from tui.commands import screen_commands

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = {command.name for command in screen_commands(app.screen, app)}
        assert {"Filter", "Sort", "Similar", "Import", "Usage", "Keys", "Quit", "Open",
                "Dark/light theme", "Search similar incidents by text"} <= names
        usage = next(c for c in screen_commands(app.screen, app) if c.name == "Usage")
        await usage.run()
        await settle(pilot)
        assert type(app.screen).__name__ == "UsageScreen"


async def test_keys_typed_after_q_open_nothing(filled_store: Any, tui_settings: Any) -> None:
    from textual import events

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Queued at once, as a fast typist's keys are: q is handled before u opens a screen.
        for key, character in (("q", "q"), ("u", "u"), ("question_mark", "?")):
            app.post_message(events.Key(key, character))
        await pilot.pause()
    assert app.return_code == 0


async def test_ctrl_p_runs_an_action_by_name(filled_store: Any, tui_settings: Any) -> None:
    from textual.command import CommandPalette

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"filter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        assert app.focused is app.screen.query_one("#filter")


async def test_a_keymap_setting_remaps_keys_and_the_help_shows_them(filled_store: Any,
                                                                   tui_settings: Any) -> None:
    from tui.app import help_sections

    remapped = tui_settings.model_copy(update={"keymap": {"app.usage": "U"}})
    app = make_app(filled_store, remapped)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert type(app.screen).__name__ == "IncidentListScreen"
        await pilot.press("U")
        await settle(pilot)
        assert type(app.screen).__name__ == "UsageScreen"
    everywhere = dict(help_sections({"app.usage": "U"}))["Everywhere"]
    assert [b.key for b in everywhere if getattr(b, "id", None) == "app.usage"] == ["U"]


async def test_the_help_and_a_tooltip_say_what_an_and_sim_mean(filled_store: Any,
                                                               tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "An: analyses of the incident" in str(app.screen.table.tooltip)
        await pilot.press("question_mark")
        columns = str(app.screen.query_one("#help-columns").render())
        assert "An analyses of the incident" in columns
        assert "Sim similar past incidents seen before" in columns


def test_a_similar_count_at_the_search_depth_reads_as_that_many_or_more() -> None:
    from datetime import UTC, datetime

    from store import IncidentSummary
    from widgets.incident_table import IncidentTable

    table = IncidentTable()
    table.similar_cap = 10
    row = IncidentSummary("INC-1", "t", "low", 1, datetime.now(UTC), datetime.now(UTC))
    table.set_similar_counts({"INC-1": 10})
    assert table._cells(row)[4] == "10+"
    table.set_similar_counts({"INC-1": 3})
    assert table._cells(row)[4] == "3"


async def test_the_filter_line_says_how_the_filter_was_understood(filled_store: Any,
                                                                  tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *'critical "file shares" OR beacon since:2026-01-01', "enter")
        await settle(pilot)
        assert sorted(listed_ids(app)) == ["INC-0002", "INC-0007"]
        assert ("matching severity critical; created since 2026-01-01; "
                "text “file shares” OR beacon") in status_of(app)
        await pilot.press("escape", "slash", *"since:soon", "enter")
        await settle(pilot)
        assert "since:soon is not a date like 2026-11-01" in status_of(app)
        assert len(listed_ids(app)) == 10


async def test_typed_markup_in_the_filter_and_the_jump_prompt_shows_as_typed(
        filled_store: Any, tui_settings: Any) -> None:
    from textual.content import Content

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"[bold]x[/]", "enter")
        await settle(pilot)
        assert "no incident matches text bold x" in status_of(app)
        await pilot.press("f")
        await pilot.press("colon", *"[red]NOPE", "enter")
        await settle(pilot)
        shown = [Content.from_markup(note.message).plain for note in app._notifications]
        assert any("No incident matches “[bold]x[/]”" in text for text in shown)
        assert any("No incident has the id “[red]NOPE”" in text for text in shown)


async def test_y_copies_the_selected_incident_id_without_claiming_it_arrived(
        filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "y")
        assert app.clipboard == "INC-0002"
        [note] = list(app._notifications)
        assert "Sent INC-0002 to the clipboard" in note.message
        assert "Terminals do not confirm" in note.message and "Copied" not in note.message


async def test_y_with_nothing_selected_says_why(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"zzzqqq", "enter")
        await settle(pilot)
        await pilot.press("y")
        assert app.clipboard == ""
        [note] = list(app._notifications)
        assert "No incident selected" in note.message


@pytest.mark.parametrize("width", [60, 70, 104])
def test_the_help_keeps_what_each_key_does_on_a_narrow_terminal(width: int) -> None:
    # 70 is the table's room in the help dialog of an 80-column terminal.
    from rich.console import Console
    from textual.binding import Binding

    from tui.app import help_sections
    from tui.screens.help import keys_table

    console = Console(width=width, record=True)
    console.print(keys_table(help_sections({})))
    shown = console.export_text()
    assert "Does" in shown.splitlines()[0]
    for _, bindings in help_sections({}):
        for item in bindings:
            binding = item if isinstance(item, Binding) else Binding(*item)
            for word in binding.description.split():  # a description may wrap, not vanish
                assert word in shown, (width, binding.description)


async def test_keys_typed_at_once_after_slash_all_reach_the_filter(filled_store: Any,
                                                                  tui_settings: Any) -> None:
    # A paste or a fast typist: every key is queued before the app handles the first. The
    # letters after / must land in the filter, not run the list's own keys (s sorts, n jumps).
    from textual import events

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        sort_before = app.screen.sort
        for character in "/sn":
            key = "slash" if character == "/" else character
            app.post_message(events.Key(key, character))
        await settle(pilot)
        assert app.focused is app.screen.query_one("#filter")
        assert app.screen.query_one("#filter").value == "sn"
        assert app.screen.sort == sort_before  # s was typed, not a change of sort
