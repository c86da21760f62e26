"""One snapshot per meaningful screen at 80x24, 120x36 and 200x50: fixed data, frozen clock,
no blink or animation.

Update with `pytest tests/snapshots --snapshot-update` after checking the report's pictures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.tui.conftest import SIZE, make_app, settle

SIZES = pytest.mark.parametrize("size", [(80, 24), SIZE, (200, 50)],
                                ids=["80x24", "120x36", "200x50"])


def after(*keys: str) -> Callable[[Any], Awaitable[None]]:
    """Wait for the first load, press keys, wait for what they started."""

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@SIZES
def test_incident_list(snap_compare: Any, filled_store: Any, tui_settings: Any,
                       size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after("j"))


@SIZES
def test_analysis_view(snap_compare: Any, filled_store: Any, tui_settings: Any,
                       size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after("j", "enter"))


@SIZES
def test_similar_incidents(snap_compare: Any, filled_store: Any, tui_settings: Any,
                           size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after("f"))


@SIZES
def test_usage(snap_compare: Any, filled_store: Any, tui_settings: Any,
               size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after("u"))


@SIZES
def test_empty_store(snap_compare: Any, empty_store: Any, tui_settings: Any,
                     size: tuple[int, int]) -> None:
    app = make_app(empty_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after())


@SIZES
def test_help(snap_compare: Any, filled_store: Any, tui_settings: Any,
              size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after("question_mark"))


@SIZES
def test_jump_prompt(snap_compare: Any, filled_store: Any, tui_settings: Any,
                     size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings)
    assert snap_compare(app, terminal_size=size, run_before=after("colon", "I", "N", "C"))


@SIZES
def test_incident_list_sorted_by_severity(snap_compare: Any, filled_store: Any,
                                          tui_settings: Any, size: tuple[int, int]) -> None:
    app = make_app(filled_store, tui_settings, view_state={"sort": "severity"})
    assert snap_compare(app, terminal_size=size, run_before=after())
