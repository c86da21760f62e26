"""The list holds a window of keyset pages: paging down, jumping to the end, coming back."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bench._records import record
from tests.tui.conftest import SIZE, make_app, save_records, settle

COUNT = 1000
PAGE = 50


@pytest.fixture
def big_store(empty_store: Any) -> Any:
    """A store of COUNT incidents, B-00000000 the oldest."""
    save_records(empty_store, [record(index) for index in range(COUNT)])
    return empty_store


def check_consistent(screen: Any) -> None:
    """The table shows the window, and each row sits at its absolute position."""
    window, table = screen.window, screen.table
    assert [r.incident_id for r in table.rows] == [r.incident_id for r in window.rows]
    assert len(window.pages) <= window.max_pages
    position = window.position(table.cursor)
    assert position is not None
    assert table.selected.incident_id == f"B-{COUNT - 1 - position:08d}"


async def test_paging_down_keeps_a_bounded_window(big_store: Any, tui_settings: Any) -> None:
    app = make_app(big_store, tui_settings, page_size=PAGE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert len(screen.window.rows) == 2 * PAGE  # the next page is fetched ahead
        for _ in range(20):
            await pilot.press("pagedown")
            await settle(pilot)
            check_consistent(screen)
        assert screen.window.rows_before and screen.window.rows_before > 0
        assert len(screen.window.rows) <= 5 * PAGE
        for _ in range(20):
            await pilot.press("pageup")
            await settle(pilot)
            check_consistent(screen)
        assert screen.window.at_top and screen.table.cursor == 0


async def test_capital_g_jumps_to_the_oldest_and_g_back(big_store: Any, tui_settings: Any
                                                        ) -> None:
    app = make_app(big_store, tui_settings, page_size=PAGE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("G")
        await settle(pilot)
        assert screen.table.selected.incident_id == "B-00000000"
        assert "row 1,000 of 1,000" in str(screen.query_one("#list-status").render())
        for _ in range(6):
            await pilot.press("pageup")
            await settle(pilot)
            check_consistent(screen)
        await pilot.press("g")
        await settle(pilot)
        assert screen.table.selected.incident_id == f"B-{COUNT - 1:08d}"
        assert "row 1 of 1,000" in str(screen.query_one("#list-status").render())


async def test_warming_fills_the_similar_column_and_gives_way(
        big_store: Any, tui_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stops: list[threading.Event] = []
    original = type(big_store).warm_similar

    def recording_warm(store: Any, ids: list[str], stop: threading.Event | None = None) -> int:
        assert stop is not None
        stops.append(stop)
        return original(store, ids, stop)

    monkeypatch.setattr(type(big_store), "warm_similar", recording_warm)
    app = make_app(big_store, tui_settings, page_size=PAGE, warm_cache=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        visible = screen.table.visible_incident_ids()
        assert stops and set(visible) <= set(screen.table.similar_counts)
        await pilot.press("enter")
        assert stops[-1].is_set()  # the analyst's request stopped the warming
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert len(stops) >= 2 and not stops[-1].is_set()  # and it resumed after
