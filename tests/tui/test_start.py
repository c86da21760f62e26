"""The app paints its list screen before the store is open, then fills it from a worker."""

from __future__ import annotations

import threading
from typing import Any

from textual.widgets._header import HeaderTitle

from tests.tui.conftest import SIZE, make_app, settle
from tui.screens.incident_list import IncidentListScreen


def status_of(app: Any) -> str:
    return str(app.screen.query_one("#list-status").render())


def header_of(app: Any) -> str:
    return str(app.screen.query_one(HeaderTitle).render())


async def test_the_list_paints_while_the_store_opens_then_fills(filled_store: Any,
                                                                 tui_settings: Any) -> None:
    opening = threading.Event()
    may_open = threading.Event()

    def open_store() -> Any:
        opening.set()
        assert may_open.wait(30), "the test never let the store open"
        return filled_store

    app = make_app(None, tui_settings, open_store=open_store)
    async with app.run_test(size=SIZE) as pilot:
        try:
            for _ in range(100):  # the opening starts after the first frame
                await pilot.pause(0.01)
                if opening.is_set():
                    break
            assert opening.is_set()
            assert isinstance(app.screen, IncidentListScreen)
            assert app.opened_store is None
            assert status_of(app).startswith("Loading incidents…")
            assert header_of(app) == "incidex — incidents"  # nobody known yet
            assert app.screen.table.rows == []
            # Keys that need a role are greyed until the role is known; the others work.
            assert app.screen.check_action("analyze", ()) is None
            assert app.screen.check_action("cycle_sort", ()) is True
        finally:
            may_open.set()
        await settle(pilot)
        assert app.opened_store is filled_store
        assert "row 1 of 10" in status_of(app)
        assert header_of(app) == "incidex — incidents · signed in as soc (admin)"
        assert app.screen.table.rows[0].incident_id == "INC-0001"
        assert app.screen.check_action("analyze", ()) is True


async def test_a_store_that_fails_to_open_ends_the_app_with_its_error(tui_settings: Any
                                                                      ) -> None:
    from store import StoreUnavailable
    from tui.exit_codes import ExitCode

    def open_store() -> Any:
        raise StoreUnavailable("cannot reach the database (test)")

    app = make_app(None, tui_settings, open_store=open_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
    assert isinstance(app.store_error, StoreUnavailable)
    assert app.return_value == ExitCode.STORE_UNAVAILABLE
    assert app.opened_store is None
