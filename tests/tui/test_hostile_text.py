"""Stored text is data on every screen: markup stays text, terminal controls never reach the screen.

Each test fills the store with records whose ids, titles, descriptions, model names, analysis
keys and values are markup (`[/]`, `[@click=app.quit]`) or terminal control sequences (OSC
title, clear screen, an OSC-8 link, a C1 CSI, a bidi override), opens a screen and inspects
every segment the compositor would write to the terminal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment
from textual import events
from textual.widgets._toast import Toast

from tests.support.hostile import (
    ACTION,
    C1_CSI,
    FORBIDDEN,
    HOSTILE_ID,
    HOSTILE_TITLE,
    MARKUP,
    OSC_TITLE,
    hostile_record,
)
from tests.tui.conftest import SIZE, fixed_record, make_app, save_records, settle


@pytest.fixture
def hostile_store(empty_store: Any) -> Any:
    """Plain fixture incidents plus two hostile ones that resemble each other."""
    records = [fixed_record(index) for index in range(4)]
    records += [hostile_record(), hostile_record(f"EVIL-2 {MARKUP}", hours_earlier=1)]
    save_records(empty_store, records)
    return empty_store


def screen_segments(app: Any) -> list[Segment]:
    """Every segment the current screen (with its toasts) would write to the terminal."""
    update = app.screen._compositor.render_full_update()
    return [segment for line in update.strips for strip in line for segment in strip]


def assert_safe(app: Any, *visible: str) -> str:
    """No control character and no stored click action on screen; `visible` shown as text."""
    assert app.is_running and app._exception is None
    segments = screen_segments(app)
    text = "".join(segment.text for segment in segments)
    assert FORBIDDEN.findall(text) == []
    clicks = [segment.style.meta.get("@click") for segment in segments
              if segment.style is not None and segment.style.meta]
    assert not any("app.quit" in str(click) for click in clicks)
    # A toast wraps its message: compare with its unwrapped content.
    toasts = [str(toast.render()) for toast in app.screen.query(Toast)]
    for expected in visible:
        assert expected in text or any(expected in toast for toast in toasts), \
            f"{expected!r} not on screen: {text!r}"
    return text


async def test_incident_list_shows_hostile_rows_and_filter_as_text(
        hostile_store: Any, tui_settings: Any) -> None:
    app = make_app(hostile_store, tui_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert_safe(app, "[/]\\x1b[2J", "[bold red]x [@click=app.quit]y[/]", "EVIL-2 [bold")
        await pilot.press("slash", "left_square_bracket", "slash", "right_square_bracket",
                          "enter")
        await settle(pilot)
        assert_safe(app, "matching “[/]”")


async def test_analysis_view_tree_text_and_header_are_text(hostile_store: Any,
                                                           tui_settings: Any) -> None:
    app = make_app(hostile_store, tui_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.open_analysis(HOSTILE_ID)
        await settle(pilot)
        text = assert_safe(app, "[/]\\x1b]0;title\\x07", "[bold red]x", "\\x1b]8;;http",
                           "\\x9b2J", "\\u202egpj.exe", "[@click=app.quit]y[/] \\x1b[2J")
        assert "[/]\\x1b]0;title\\x07 · " in text  # the header's subtitle
        await pilot.press("v")
        await settle(pilot)
        text = assert_safe(app, '"[bold red]x"', "[@click=app.quit]y[/]")
        assert "\\u001b]0;title\\u0007" in text and "\\u009b2J" in text
        assert json.loads(app.screen.query_one("#analysis-json").text)[MARKUP]["[/]"][1] == C1_CSI


async def test_similar_screen_shows_hits_and_typed_query_as_text(hostile_store: Any,
                                                                 tui_settings: Any) -> None:
    app = make_app(hostile_store, tui_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.open_similar(incident_id=f"EVIL-2 {MARKUP}", title=HOSTILE_TITLE)
        await settle(pilot)
        assert_safe(app, "[/]\\x1b[2J", "[bold red]x [@click=app.quit]y[/]",
                    "similar to EVIL-2 [bold red]x")
        await pilot.press("slash")
        query = app.screen.query_one("#query")
        query.post_message(events.Paste(f"[/] {ACTION} {OSC_TITLE}{C1_CSI} phishing"))
        await pilot.pause()
        assert query.value == "[/] [@click=app.quit]y[/] ]0;title2J phishing"
        await pilot.press("enter")
        await settle(pilot)
        assert_safe(app, "“[/] [@click=app.quit]y[/] ]0;title2J phishing”")


async def test_usage_screen_shows_hostile_models_and_incidents_as_text(
        hostile_store: Any, tui_settings: Any) -> None:
    app = make_app(hostile_store, tui_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert_safe(app, "[/]\\x1b]0;title\\x07", "[/]\\x1b[2J")


async def test_help_and_palette_show_remapped_keys_as_text(hostile_store: Any,
                                                           tui_settings: Any) -> None:
    settings = tui_settings.model_copy(update={"keymap": {"app.usage": "[/]"}})
    app = make_app(hostile_store, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert re.search(r"\[/\]\s+Usage\s+app\.usage", assert_safe(app))
        await pilot.press("escape")
        await settle(pilot)
        app.action_command_palette()
        await settle(pilot)
        assert_safe(app, "key up")
        await pilot.press(*"usage")
        await settle(pilot)
        assert_safe(app, "key [/]")


async def test_import_modal_and_notifications_show_names_and_errors_as_text(
        hostile_store: Any, tui_settings: Any, tmp_path: Path) -> None:
    source = tmp_path / "[bold]batch[@click=app.quit].jsonl"
    bad = hostile_record(f"BAD {ACTION}{OSC_TITLE}")
    bad["usage"]["input_tokens"] = "many"
    source.write_text(json.dumps(hostile_record("NEW [/]")) + "\n" + json.dumps(bad) + "\n")
    app = make_app(hostile_store, tui_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await pilot.pause()
        app.screen.query_one("#path").value = str(source)
        await pilot.press("enter")
        await settle(pilot)
        assert_safe(app, "of [bold]batch[@click=app.quit].jsonl not imported",
                    "BAD [@click=app.quit]y[/]\\x1b]0;title\\x07")
        await pilot.press("escape")
        await settle(pilot)
        assert_safe(app, "[bold]batch[@click=app.quit].jsonl: 1 saved")


async def test_a_failed_worker_notification_shows_the_error_as_text(
        hostile_store: Any, tui_settings: Any) -> None:
    app = make_app(hostile_store, tui_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.open_similar(incident_id=f"NOPE [/] {ACTION} {OSC_TITLE}")
        await settle(pilot)
        assert_safe(app, "no incident 'NOPE [/] [@click=app.quit]y[/] \\x1b]0;title\\x07'")
