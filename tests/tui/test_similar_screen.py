"""The similar screen's filters, folded near-duplicates and highlighted shared indicators."""

from __future__ import annotations

from typing import Any

from textual.widgets import OptionList

from tests.tui.conftest import FIXED_INCIDENTS, SIZE, make_app, settle
from tui.screens.similar import SimilarScreen

SEVERITY_OF = {incident[0]: incident[2] for incident in FIXED_INCIDENTS}
HOURS_OLD = {incident[0]: incident[4] for incident in FIXED_INCIDENTS}


def shown_ids(screen: SimilarScreen) -> list[str]:
    results = screen.query_one("#similar-results", OptionList)
    return [str(results.get_option_at_index(i).id) for i in range(results.option_count)]


def status_of(screen: SimilarScreen) -> str:
    return str(screen.query_one("#similar-status").render())


async def open_similar_to_first(pilot: Any) -> SimilarScreen:
    await settle(pilot)
    await pilot.press("f")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, SimilarScreen) and screen.incident_id == "INC-0001"
    return screen


async def test_s_cycles_a_minimum_severity_and_searches_again(filled_store: Any,
                                                               tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_similar_to_first(pilot)
        unfiltered = shown_ids(screen)
        assert {SEVERITY_OF[i] for i in unfiltered} >= {"low", "medium"}
        await pilot.press("s", "s", "s")
        await settle(pilot)
        high_or_worse = shown_ids(screen)
        assert high_or_worse and {SEVERITY_OF[i] for i in high_or_worse} <= {"high", "critical"}
        assert "severity high or worse" in status_of(screen)
        await pilot.press("s")
        await settle(pilot)
        critical = shown_ids(screen)
        assert critical and {SEVERITY_OF[i] for i in critical} == {"critical"}
        await pilot.press("s")
        await settle(pilot)
        assert shown_ids(screen) == unfiltered
        assert "severity" not in status_of(screen)


async def test_d_cycles_an_age_window_from_the_app_clock(filled_store: Any,
                                                         tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_similar_to_first(pilot)
        assert any(HOURS_OLD[i] > 7 * 24 for i in shown_ids(screen))
        await pilot.press("d")
        await settle(pilot)
        # The window ends at the app's frozen clock: a week before the wall clock would be empty.
        last_week = shown_ids(screen)
        assert last_week and all(HOURS_OLD[i] < 7 * 24 for i in last_week)
        assert "last 7 days" in status_of(screen)


async def test_filters_apply_to_a_typed_query_too(filled_store: Any, tui_settings: Any
                                                  ) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen)
        await pilot.press(*"invoice macro phishing", "enter")
        await settle(pilot)
        assert any(SEVERITY_OF[i] != "critical" for i in shown_ids(screen))
        for _ in range(4):
            await pilot.press("s")
        await settle(pilot)
        critical = shown_ids(screen)
        assert critical and {SEVERITY_OF[i] for i in critical} == {"critical"}
        assert "invoice macro phishing" in status_of(screen)
