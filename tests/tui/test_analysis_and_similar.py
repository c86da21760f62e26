"""The analysis view (switch, tree/text, copy, export) and similar incidents (and back)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import OptionList, Tree

from tests.tui.conftest import SIZE, make_app, settle
from tui.screens.analysis import AnalysisScreen
from tui.screens.incident_list import IncidentListScreen
from tui.screens.similar import SimilarScreen
from widgets.json_view import JsonView


async def open_second_incident(pilot: Any) -> AnalysisScreen:
    await settle(pilot)
    await pilot.press("j", "enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AnalysisScreen) and screen.incident_id == "INC-0002"
    return screen


async def test_every_analysis_is_listed_and_n_switches(filled_store: Any, tui_settings: Any
                                                       ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        assert [a.model_name for a in screen.analyses] == ["gpt-4o", "gpt-4o-mini"]
        assert screen.query_one("#analyses", OptionList).option_count == 2
        assert screen.current is screen.analyses[0]
        await pilot.press("n")
        assert screen.current is screen.analyses[1]
        assert "First look." in screen.query_one(JsonView).text
        await pilot.press("p")
        assert screen.current is screen.analyses[0]


async def test_v_toggles_between_the_tree_and_the_text(filled_store: Any, tui_settings: Any
                                                       ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        view = screen.query_one(JsonView)
        tree = view.query_one(Tree)
        assert tree.display and tree.root.children
        labels = [str(node.label) for node in tree.root.children]
        assert any(label.startswith("severity") for label in labels)
        await pilot.press("v")
        assert not tree.display and view.query_one("#json-text").display
        assert json.loads(view.text)["severity"] == "critical"
        await pilot.press("v")
        assert tree.display


async def test_capital_y_copies_the_incident_id(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_second_incident(pilot)
        await pilot.press("Y")
        assert app.clipboard == "INC-0002"
        [note] = list(app._notifications)
        assert "Sent INC-0002 to the clipboard" in note.message
        assert "Terminals do not confirm" in note.message


async def test_y_copies_the_json_and_e_exports_it(filled_store: Any, tui_settings: Any,
                                                  isolated_directories: Path) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        await pilot.press("y")
        assert json.loads(app.clipboard)["severity"] == "critical"
        assert any("Sent" in n.message and "Terminals do not confirm" in n.message
                   and "e exports to a file" in n.message for n in app._notifications)
        assert not any("Copied" in n.message for n in app._notifications)
        await pilot.press("e")
        await pilot.pause()
        prompt_value = app.screen.query_one("#path").value
        assert prompt_value.startswith(str(isolated_directories / "exports"))
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        written = Path(prompt_value)
        assert json.loads(written.read_text())["severity"] == "critical"
        assert any(f"Wrote {written}" in n.message for n in app._notifications)


async def test_an_export_that_fails_is_a_notification_not_a_crash(
        filled_store: Any, tui_settings: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#path").value = str(blocker / "out.json")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen and app.is_running
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "cannot write" in errors[-1].message


async def test_f_finds_similar_incidents_enter_opens_escape_goes_back(
        filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen) and screen.incident_id == "INC-0001"
        results = screen.query_one("#similar-results", OptionList)
        hit_ids = [results.get_option_at_index(i).id for i in range(results.option_count)]
        assert hit_ids and "INC-0001" not in hit_ids
        assert hit_ids[0] in ("INC-0004", "INC-0010")
        status = str(screen.query_one("#similar-status").render())
        assert "similar to INC-0001" in status
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen)
        assert app.screen.incident_id == hit_ids[0]
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("escape")
        assert isinstance(app.screen, IncidentListScreen)


async def test_a_typed_query_finds_similar_incidents(filled_store: Any, tui_settings: Any
                                                     ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen) and screen.incident_id is None
        assert app.focused is screen.query_one("#query")
        await pilot.press(*"ransomware encrypted file shares", "enter")
        await settle(pilot)
        results = screen.query_one("#similar-results", OptionList)
        hit_ids = [results.get_option_at_index(i).id for i in range(results.option_count)]
        assert "INC-0002" in hit_ids[:2]
        assert app.focused is results


async def test_f_from_the_analysis_view_comes_back_to_it(filled_store: Any, tui_settings: Any
                                                         ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, SimilarScreen)
        assert app.screen.incident_id == "INC-0002"
        await pilot.press("escape")
        assert app.screen is screen


async def test_an_analysis_reads_summary_severity_and_category_first(filled_store: Any,
                                                                     tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        view = screen.query_one(JsonView)
        keys = list(json.loads(view.text))
        assert keys[:3] == ["summary", "severity", "category"]
        assert sorted(keys[3:]) == keys[3:]  # the rest as stored
        tree = view.query_one("#json-tree")
        first = [str(child.label).split(":")[0].split()[0] for child in tree.root.children[:3]]
        assert first == ["summary", "severity", "category"]


async def test_an_incident_whose_key_is_missing_is_shown_marked_unreadable(
        filled_store: Any, tui_settings: Any) -> None:
    import io

    from rich.console import Console
    from textual.widgets import Static

    from store import Store

    keyring = filled_store.cipher.keyring
    (keyring.directory / f"{keyring.primary_id()}.key").unlink()
    with Store.open(tui_settings) as keyless:
        app = make_app(keyless, tui_settings)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_second_incident(pilot)
            console = Console(width=200, record=True, file=io.StringIO())
            console.print(screen.query_one("#incident-text", Static).content)
            shown = console.export_text()
            assert "text unreadable" in shown and "missing from the keyring" in shown
            assert "Ransomware encrypted file shares" in shown  # the title stays plain


async def test_at_80x24_the_incident_header_takes_two_rows_and_i_shows_it_all(
        filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_second_incident(pilot)
        header = screen.query_one("#incident-header")
        assert header.outer_size.height == 2
        await pilot.press("i")
        await pilot.pause()
        assert header.outer_size.height == 6  # title, dates, description and findings
        await pilot.press("i")
        await pilot.pause()
        assert header.outer_size.height == 2
        footer_keys = [binding.key for (_, binding, _, _) in screen.active_bindings.values()
                       if binding.show]
        assert "y" not in footer_keys and "e" not in footer_keys


async def type_at_once(pilot: Any, keys: str) -> None:
    """Queue every key before the app handles the first, as a paste or a fast typist does."""
    from textual import events

    names = {"/": "slash", " ": "space"}
    for character in keys:
        pilot.app.post_message(events.Key(names.get(character, character), character))
    await settle(pilot)


async def test_keys_typed_at_once_after_slash_reach_the_analysis_search(
        filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        await type_at_once(pilot, "/ycn")  # y copies, c compares, n moves on: none of them
        search_line = screen.query_one("#analysis-search")
        assert app.focused is search_line
        assert search_line.value == "ycn"
        assert app.screen is screen


async def test_keys_typed_at_once_after_slash_reach_the_similar_query(
        filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen)
        query = screen.query_one("#query")
        query.value = ""
        await type_at_once(pilot, "/sdx/")  # s, d and x are the similar screen's own keys
        assert app.focused is query
        assert query.value == "sdx/"  # a / typed in the field is a character
