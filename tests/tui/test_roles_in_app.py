"""The app shows who is signed in, greys out what the role forbids, and notifies a refusal."""

from __future__ import annotations

from typing import Any

from tests.tui.conftest import SIZE, make_app, settle
from tui.screens.analysis import AnalysisScreen


def reopened_as(store: Any, name: str, role: str) -> Any:
    from store.store import Store

    store.add_user(name, role)
    return Store.open(store.settings, actor=name)


async def test_the_header_says_who_is_signed_in(filled_store: Any, tui_settings: Any) -> None:
    viewer = reopened_as(filled_store, "vera", "viewer")
    app = make_app(viewer, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        from textual.widgets._header import HeaderTitle

        shown = str(app.screen.query_one(HeaderTitle).render())
        assert shown == "incidex — incidents · signed in as vera (viewer)"
    viewer.close()


async def test_a_viewer_sees_forbidden_keys_greyed_and_a_refusal_notified(
        filled_store: Any, tui_settings: Any) -> None:
    viewer = reopened_as(filled_store, "vera", "viewer")
    app = make_app(viewer, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("analyze", ()) is None
        assert screen.check_action("import_file", ()) is None
        assert screen.check_action("similar", ()) is True
        assert app.check_action("usage", ()) is True
        await pilot.press("j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, AnalysisScreen)
        assert app.screen.check_action("export", ()) is None
        assert any("access denied: vera (viewer) may not read" in n.message
                   for n in app._notifications)
    viewer.close()


async def test_an_analyst_may_export(filled_store: Any, tui_settings: Any) -> None:
    analyst = reopened_as(filled_store, "ana", "analyst")
    app = make_app(analyst, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.check_action("analyze", ()) is True
        await pilot.press("j", "enter")
        await settle(pilot)
        assert app.screen.check_action("export", ()) is True
    analyst.close()
