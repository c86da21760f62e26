"""One snapshot per meaningful screen: fixed data, frozen clock, 120x36, no blink or animation.

Update with `pytest tests/snapshots --snapshot-update` after checking the report's pictures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.tui.conftest import SIZE, make_app, settle


def after(*keys: str) -> Callable[[Any], Awaitable[None]]:
    """Wait for the first load, press keys, wait for what they started."""

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


def test_incident_list(snap_compare: Any, filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("j"))


def test_analysis_view(snap_compare: Any, filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("j", "enter"))


def test_similar_incidents(snap_compare: Any, filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("f"))


def test_usage(snap_compare: Any, filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("u"))


def test_empty_store(snap_compare: Any, empty_store: Any, tui_settings: Any) -> None:
    app = make_app(empty_store, tui_settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=after())


def test_help(snap_compare: Any, filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=SIZE, run_before=after("question_mark"))
