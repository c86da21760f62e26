"""The similar screen's filters, folded near-duplicates and highlighted shared indicators."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import OptionList

from tests.tui.conftest import (
    FIXED_INCIDENTS,
    SIZE,
    fixed_record,
    make_app,
    save_records,
    settle,
)
from tui.screens.analysis import AnalysisScreen
from tui.screens.similar import SimilarScreen
from widgets.similar_list import IOC_STYLE, TECHNIQUE_STYLE, SimilarList

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
        assert status_of(screen).startswith("severity ≥ high · ")
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
        assert status_of(screen).startswith("last 7 days · ")


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


def with_copies_of_the_bucket_incident(store: Any, copies: int) -> None:
    """Save copies of INC-0005 under other ids: near-duplicates of one another."""
    records = []
    for number in range(copies):
        record = fixed_record(4)
        record["incident"]["incident_id"] = f"COPY-{number}"
        record["analysis"]["run"] = number  # another analysis, the same text
        record["usage"]["request_id"] = f"req-copy-{number}"
        records.append(record)
    save_records(store, records)


async def test_x_lists_the_folded_near_duplicates_and_enter_opens_one(
        filled_store: Any, tui_settings: Any) -> None:
    with_copies_of_the_bucket_incident(filled_store, 3)
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen)
        await pilot.press(*"public S3 bucket exposed marketing exports", "enter")
        await settle(pilot)
        results = screen.query_one(SimilarList)
        folded = shown_ids(screen)
        top = results.hits[0]
        assert top.near_duplicates == 3 and folded[0] == top.incident_id
        assert "+3 near-duplicates (x lists them)" in str(results.get_option_at_index(0).prompt)
        await pilot.press("x")
        members = [hit.incident_id for hit in top.near_duplicate_hits]
        assert shown_ids(screen) == [folded[0], *members, *folded[1:]]
        assert sorted([folded[0], *members]) == ["COPY-0", "COPY-1", "COPY-2", "INC-0005"]
        assert "x folds them" in str(results.get_option_at_index(0).prompt)
        await pilot.press("j", "x")  # x on a member folds its group
        assert shown_ids(screen) == folded and results.highlighted == 0
        await pilot.press("x", "j", "j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen)
        assert app.screen.incident_id == members[1]
        await pilot.press("escape")
        assert app.screen is screen


async def test_x_on_a_row_without_near_duplicates_says_so(filled_store: Any,
                                                          tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_similar_to_first(pilot)
        before = shown_ids(screen)
        await pilot.press("x")
        await pilot.pause()
        assert shown_ids(screen) == before
        assert any("no near-duplicates" in n.message for n in app._notifications)


async def test_shared_iocs_and_techniques_are_highlighted_in_each_row(
        filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_similar_to_first(pilot)
        results = screen.query_one(SimilarList)
        prompt = results.get_option_at_index(shown_ids(screen).index("INC-0004")).prompt
        assert isinstance(prompt, Text)

        def styles_of(value: str) -> set[str]:
            start = prompt.plain.index(value)
            return {str(span.style) for span in prompt.spans
                    if span.start <= start and span.end >= start + len(value)}

        assert IOC_STYLE in styles_of("invoice-pay.example.net")
        assert TECHNIQUE_STYLE in styles_of("T1566.001")
        assert IOC_STYLE not in styles_of("Second phishing wave")
