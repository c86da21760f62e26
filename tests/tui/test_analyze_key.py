"""`a` runs a new analysis in a worker: estimate, progress, the new analysis opens; failures
are notifications. Against a real OpenAI-compatible HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import OptionList

from tests.store.test_analyze import analysis_reply
from tests.support.openai_server import OpenAIServer
from tests.tui.conftest import SIZE, fixed_records, make_app, save_records, settle
from tui.screens.analysis import AnalysisScreen
from tui.screens.incident_list import IncidentListScreen
from widgets.json_view import JsonView


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(dimension=64, chat_reply=analysis_reply) as running:
        yield running


@pytest.fixture
def chat_settings(tui_settings: Any, server: OpenAIServer) -> Any:
    return tui_settings.model_copy(update={
        "openai_base_url": server.base_url, "openai_api_key": "k", "chat_model": "gpt-4o-mini",
        "analyze_timeout_seconds": 3.0})


@pytest.fixture
def filled_store(chat_settings: Any) -> Iterator[Any]:
    """The fixed records in a store whose chat model is the test server."""
    from store import Store

    opened = Store.open(chat_settings)
    save_records(opened, fixed_records())
    yield opened
    opened.close()


def messages(app: Any) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def test_a_on_the_list_estimates_runs_and_opens_the_new_analysis(
        filled_store: Any, chat_settings: Any, server: OpenAIServer) -> None:
    app = make_app(filled_store, chat_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AnalysisScreen) and screen.incident_id == "INC-0001"
        assert server.chat_requests == 1
        assert len(screen.analyses) == 2
        new = screen.current
        assert new is not None and new.analysis["schema_version"] == "incident_analysis/1"
        assert new.input_tokens == server.chat_prompt_tokens and new.cost_usd
        assert screen.query_one("#analyses", OptionList).border_title == "Analyses (2)"
        assert '"category": "phishing"' in screen.query_one(JsonView).text
        shown = messages(app)
        assert any(m.startswith("Analysing INC-0001…: gpt-4o-mini: about") for m in shown)
        assert any(m.startswith("New analysis of INC-0001: high ·") for m in shown)
        await pilot.press("n")  # the earlier analysis is still one key away
        assert screen.current is screen.analyses[1]


async def test_a_on_the_analysis_view_adds_beside_and_a_hit_costs_nothing(
        filled_store: Any, chat_settings: Any, server: OpenAIServer) -> None:
    app = make_app(filled_store, chat_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AnalysisScreen) and len(screen.analyses) == 2
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is screen and len(screen.analyses) == 3
        assert screen.current is not None and screen.current.analysis_id == \
            screen.analyses[0].analysis_id
        await pilot.press("a")
        await settle(pilot)
        assert server.chat_requests == 1 and len(screen.analyses) == 3
        assert any("from the cache, no tokens spent" in m for m in messages(app))


async def test_a_failure_is_a_notification(filled_store: Any, chat_settings: Any,
                                           server: OpenAIServer) -> None:
    server.fail_status = 500
    app = make_app(filled_store, chat_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, IncidentListScreen)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and errors[0].title == "Analysis failed"
        assert errors[0].message.startswith("incident 'INC-0001': gpt-4o-mini: HTTP 500")
        assert app.analysing == set()
        assert len(filled_store.analyses("INC-0001")) == 1
