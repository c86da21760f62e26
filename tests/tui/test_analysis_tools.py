"""The analysis screen's tools: search with n/N, collapse and expand all, schema key order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import Static, Tree

from tests.tui.conftest import SIZE, make_app, settle
from tests.tui.test_analysis_and_similar import open_second_incident
from widgets.json_view import JsonView


def _cursor_label(view: JsonView) -> str:
    node = view.query_one(Tree).cursor_node
    assert node is not None
    return node.label.plain


async def test_slash_searches_and_n_walks_the_matches(filled_store: Any, tui_settings: Any
                                                      ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        view = screen.query_one(JsonView)
        first_analysis = screen.current
        await pilot.press("slash", *"BLOCK", "enter")
        await settle(pilot)
        # "Block the indicators" is one leaf: one match, case-insensitive, cursor on it.
        assert view.match_count == 1
        assert _cursor_label(view).endswith('"Block the indicators"')
        status = screen.query_one("#analysis-search-status", Static)
        assert status.display and "match 1 of 1" in str(status.render())
        await pilot.press("slash", "ctrl+u", *"t1", "enter")
        await settle(pilot)
        # T1486 and T1021.002: two technique ids.
        assert view.match_count == 2
        assert "T1486" in _cursor_label(view)
        await pilot.press("n")
        assert "T1021.002" in _cursor_label(view)
        await pilot.press("n")
        assert "T1486" in _cursor_label(view)
        await pilot.press("N")
        assert "T1021.002" in _cursor_label(view)
        # While the search is active n walks matches, it does not switch analyses.
        assert screen.current is first_analysis
        highlighted = [node for node in _nodes(view.query_one(Tree).root)
                       if any(span.style == "black on yellow" for span in node.label.spans)]
        assert len(highlighted) == 2
        # The search follows to another analysis (] switches analyses whatever is searched).
        await pilot.press("right_square_bracket")
        assert screen.current is screen.analyses[1] and view.match_count == 2
        await pilot.press("left_square_bracket")
        assert screen.current is first_analysis
        # Esc on an open search line closes it and keeps the search; a second Esc clears it.
        await pilot.press("slash")
        search_line = screen.query_one("#analysis-search")
        assert search_line.display and search_line.has_focus
        await pilot.press("escape")
        assert not search_line.display and view.query_text == "t1"
        await pilot.press("escape")
        assert not view.query_text and not status.display
        assert not any(span.style == "black on yellow" for node in _nodes(view.query_one(Tree).root)
                       for span in node.label.spans)
        assert app.screen is screen
        await pilot.press("n")
        assert screen.current is screen.analyses[1]


async def test_the_search_runs_as_you_type_once_typing_pauses(filled_store: Any,
                                                              tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        view = screen.query_one(JsonView)
        await pilot.press("slash", *"t1")
        # Typing quickly: no search per key, one after the pause.
        assert view.query_text == ""
        await pilot.pause(0.4)
        assert view.query_text == "t1" and view.match_count == 2
        assert screen.query_one("#analysis-search").has_focus
        assert "match 1 of 2" in str(screen.query_one("#analysis-search-status", Static).render())
        await pilot.press(*"486")
        await pilot.pause(0.4)
        assert view.query_text == "t1486" and view.match_count == 1
        assert "T1486" in _cursor_label(view)


async def test_search_in_the_text_view_scrolls_to_the_match(filled_store: Any,
                                                            tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        view = screen.query_one(JsonView)
        await pilot.press("v", "slash", *"reset", "enter")
        await settle(pilot)
        assert view.match_count == 1
        line, column = view._text_matches[0]
        assert view.text.split("\n")[line][column:column + 5] == "Reset"
        await pilot.press("slash", "ctrl+u", *"nothing-like-this", "enter")
        await settle(pilot)
        assert view.match_count == 0
        assert "no match" in str(screen.query_one("#analysis-search-status", Static).render())


async def test_minus_collapses_and_plus_expands_every_branch(filled_store: Any,
                                                             tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        tree = screen.query_one(JsonView).query_one(Tree)
        branches = [node for node in _nodes(tree.root) if node.children]
        assert len(branches) > 3 and all(node.is_expanded for node in branches)
        await pilot.press("minus")
        assert tree.root.is_expanded
        assert not any(node.is_expanded for node in branches if node is not tree.root)
        await pilot.press("plus")
        assert all(node.is_expanded for node in branches)


def _nodes(node: Any) -> list[Any]:
    return [node, *[n for child in node.children for n in _nodes(child)]]


async def test_an_analysis_with_schema_version_lists_keys_in_schema_order(
        empty_store: Any, tui_settings: Any) -> None:
    from store.analyze.schema import SCHEMA_NAME, SCHEMA_VERSION, IncidentAnalysis
    from tests.tui.conftest import fixed_record, save_records

    record = fixed_record(0)
    record["analysis"] = {
        "summary": "Phishing contained.", "severity": "high", "category": "phishing",
        "attack_techniques": [{"id": "T1566.001", "name": "Spearphishing Attachment"}],
        "iocs": {"domains": ["invoice-pay.example.net"]}, "affected_assets": ["laptop-17"],
        "recommendations": ["Block the sender"], "confidence": 0.8,
        "schema_version": f"{SCHEMA_NAME}/{SCHEMA_VERSION}", "zz_extra": 1,
    }
    save_records(empty_store, [record])
    app = make_app(empty_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        tree = app.screen.query_one(JsonView).query_one(Tree)
        keys = [node.label.plain.split(":")[0].split("  ")[0] for node in tree.root.children]
        assert keys == [*IncidentAnalysis.model_fields, "schema_version", "zz_extra"]


async def test_shift_e_exports_the_incident_and_asks_before_overwriting(
        filled_store: Any, tui_settings: Any, tmp_path: Path) -> None:
    from tui.screens.confirm import ConfirmScreen

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        target = tmp_path / "out" / "INC-0002.json"
        await pilot.press("E")
        await pilot.pause()
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        exported = json.loads(target.read_text())
        assert exported["incident"]["incident_id"] == "INC-0002"
        assert [a["model_name"] for a in exported["analyses"]] == ["gpt-4o", "gpt-4o-mini"]
        assert exported["usage"]["analyses"] == 2
        assert exported["usage"]["input_tokens"] == 2 * 1100
        assert target.stat().st_mode & 0o777 == 0o600
        target.write_text("keep me")
        # The same file again: a question, and No leaves it alone.
        await pilot.press("E")
        await pilot.pause()
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is screen and target.read_text() == "keep me"
        # Markdown, by the name's suffix; Yes replaces an existing file.
        markdown = tmp_path / "out" / "INC-0002.md"
        markdown.write_text("old")
        await pilot.press("E")
        await pilot.pause()
        app.screen.query_one("#path").value = str(markdown)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        text = markdown.read_text()
        assert text.startswith("# INC-0002: Ransomware encrypted file shares in logistics")
        assert text.count("## Analysis ") == 2 and "First look." in text


async def test_e_asks_before_overwriting_an_analysis_export(
        filled_store: Any, tui_settings: Any, tmp_path: Path) -> None:
    from tui.screens.confirm import ConfirmScreen

    target = tmp_path / "analysis.json"
    target.write_text("keep me")
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#path").value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and target.read_text() == "keep me"


async def test_c_compares_two_analyses_and_marks_what_differs(filled_store: Any,
                                                              tui_settings: Any) -> None:
    from tui.screens.compare import CompareScreen

    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        await pilot.press("c")
        await settle(pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        differing = {key for key, _left, _right, differ in compare.rows if differ}
        # The two fixed analyses of INC-0002 differ only in the summary (" First look.").
        assert differing == {"summary"}
        assert [key for key, *_ in compare.rows][:3] == ["summary", "severity", "category"]
        shown = compare.query_one("#compare-table", Static).render()
        assert "1 of 6 keys differ" in str(compare.query_one(".prompt-title").render())
        assert shown is not None
        await pilot.press("escape")
        assert app.screen is screen


async def test_c_with_three_analyses_compares_with_the_one_picked_from_a_list(
        filled_store: Any, tui_settings: Any) -> None:
    from tests.tui.conftest import fixed_record, save_records
    from tui.screens.choose_analysis import ChooseAnalysisScreen
    from tui.screens.compare import CompareScreen

    save_records(filled_store, [fixed_record(1, hours_earlier=5, model="claude-sonnet-4",
                                             summary_suffix=" Third look.")])
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        assert [a.model_name for a in screen.analyses] == ["gpt-4o", "gpt-4o-mini",
                                                           "claude-sonnet-4"]
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ChooseAnalysisScreen)
        await pilot.press("down", "enter")
        await settle(pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert compare.left_title.startswith("gpt-4o ·")
        assert compare.right_title.startswith("claude-sonnet-4 ·")
        [summary_row] = [row for row in compare.rows if row[0] == "summary"]
        assert summary_row[2].endswith("Third look.") and summary_row[3]
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_c_with_one_analysis_says_it_needs_two(filled_store: Any, tui_settings: Any
                                                     ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        await pilot.press("c")
        await settle(pilot)
        assert app.screen is screen
        assert any("needs two analyses" in n.message for n in app._notifications)


def test_compare_rows_marks_missing_and_changed_keys() -> None:
    from tui.screens.compare import compare_rows

    rows = compare_rows({"a": 1, "b": [1, 2], "c": "x"}, {"b": [1, 2], "c": "y", "d": None},
                        ("c",))
    assert rows == [("c", "x", "y", True), ("a", 1, ..., True), ("b", [1, 2], [1, 2], False),
                    ("d", ..., None, True)]


async def test_a_search_of_markup_and_controls_is_shown_as_typed(filled_store: Any,
                                                                 tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_second_incident(pilot)
        view = screen.query_one(JsonView)
        await pilot.press("slash")
        screen.query_one("#analysis-search").value = "[bold]x[/] \x1b[2J"
        await pilot.press("enter")
        await settle(pilot)
        assert view.match_count == 0
        shown = str(screen.query_one("#analysis-search-status", Static).render())
        assert "[bold]x[/]" in shown and "\x1b" not in shown
