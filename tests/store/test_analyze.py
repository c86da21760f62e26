"""The analysis runner against a real OpenAI-compatible HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from store.analyze import AnalysisRunner, AnalyzeError, RetryPolicy
from store.db.engine import read_connection
from store.db.models import RunMetadata, table_of
from store.errors import StoreError
from store.ingest.records import validate_record
from store.schemas import IncidentIn
from store.store import Store
from tests.conftest import make_record
from tests.support.openai_server import OpenAIServer

NEW_ID = "INC-NEW-1"
RAW_EMAIL = "jane.roe@contoso-finance.com"
PSEUDONYM = re.compile(r"<EMAIL_[0-9a-f]{12}>")


PAST = [
    ("Invoice phishing to accounts payable", "A fake supplier invoice carried a macro."),
    ("Credential phishing page for the VPN portal", "Staff were sent a lookalike login page."),
    ("Macro document dropped a loader on a finance laptop", "EDR caught the invoice macro."),
]


def analysis_reply(messages: list[dict[str, Any]], **changes: Any) -> str:
    """A valid analysis that repeats the e-mail (or its pseudonym) the prompt gave."""
    user = str(messages[1].get("content") or "")
    found = PSEUDONYM.search(user) or re.search(r"[\w.]+@[\w.-]+", user)
    document: dict[str, Any] = {
        "summary": "Invoice phishing with a macro attachment; one user opened it.",
        "severity": "high",
        "category": "phishing",
        "attack_techniques": [{"id": "T1566.001", "name": "Spearphishing Attachment"}],
        "iocs": {"domains": ["invoice-pay.example.net"],
                 "email_addresses": [found.group(0)] if found else []},
        "affected_assets": ["finance workstation FIN-22"],
        "recommendations": ["Block the sender domain", "Reimage FIN-22"],
        "confidence": 0.8,
    }
    document.update(changes)
    return json.dumps(document)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(dimension=64, chat_reply=analysis_reply) as running:
        yield running


@pytest.fixture
def analyze_store(settings: Any, server: OpenAIServer) -> Iterator[Store]:
    """A store with three past phishing incidents and one new incident without analysis."""
    configured = settings.model_copy(update={
        "openai_base_url": server.base_url, "openai_api_key": "test-key",
        "chat_model": "gpt-4o-mini", "analyze_timeout_seconds": 3.0,
    })
    opened = Store.open(configured)
    for number, (title, description) in enumerate(PAST, 1):
        record = make_record(f"INC-{number}")
        record["incident"].update(title=title, description=description)
        record["analysis"]["attack_techniques"] = [{"id": "T1566.001"}]
        opened.save_analysis(validate_record(record, "seed"), "seed")
    opened.register_incidents([IncidentIn(
        incident_id=NEW_ID, title="Phishing wave with an invoice macro attachment",
        description=f"Finance received a fake invoice; {RAW_EMAIL} opened the macro.",
        initial_findings="Mail gateway alert on the invoice attachment.")])
    yield opened
    opened.close()


def chat_rows(store: Store) -> list[Any]:
    runs = table_of(RunMetadata).c
    with read_connection(store.engine) as connection:
        return list(connection.execute(
            select(runs.request_id, runs.incident_id, runs.analysis_id, runs.input_tokens,
                   runs.output_tokens, runs.cost_usd).where(runs.kind == "chat",
                                                            runs.incident_id == NEW_ID)))


def test_run_saves_a_validated_metered_analysis(analyze_store: Store, server: OpenAIServer
                                                ) -> None:
    outcome = analyze_store.analysis_runner().run(NEW_ID)
    assert outcome.status == "saved" and not outcome.from_cache
    [saved] = analyze_store.analyses(NEW_ID)
    assert saved.analysis["schema_version"] == "incident_analysis/1"
    assert saved.analysis["severity"] == "high" == saved.severity
    # The model saw a pseudonym; the saved analysis has the real address back.
    assert saved.analysis["iocs"]["email_addresses"] == [RAW_EMAIL]
    [row] = chat_rows(analyze_store)
    assert row.request_id == "chatcmpl-req-" + server.request_ids[-1].removeprefix("req-")
    assert (row.input_tokens, row.output_tokens) == (server.chat_prompt_tokens,
                                                      server.chat_completion_tokens)
    assert row.analysis_id == outcome.analysis_id and row.cost_usd > 0
    assert saved.cost_usd == outcome.cost_usd
    assert analyze_store.unanalysed_incident_ids() == []


def test_prompt_holds_similar_incidents_and_no_raw_pii(analyze_store: Store,
                                                       server: OpenAIServer) -> None:
    outcome = analyze_store.analysis_runner().run(NEW_ID)
    body = server.chat_bodies[-1]
    sent = json.dumps(body)
    assert RAW_EMAIL not in sent and PSEUDONYM.search(sent)
    user = body["messages"][1]["content"]
    assert set(outcome.similar_ids) == {"INC-1", "INC-2", "INC-3"}
    for incident_id in outcome.similar_ids:
        assert f"Phishing for {incident_id}" in user
    assert "T1566.001" in user and "severity high" in user
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"]


def test_raw_text_is_sent_when_stripping_is_off(analyze_store: Store,
                                                server: OpenAIServer) -> None:
    analyze_store.settings.analyze_strip_pii = False
    analyze_store.analysis_runner().run(NEW_ID)
    assert RAW_EMAIL in json.dumps(server.chat_bodies[-1])


def test_a_second_run_is_a_cache_hit_credited_as_savings(analyze_store: Store,
                                                         server: OpenAIServer) -> None:
    runner = analyze_store.analysis_runner()
    first = runner.run(NEW_ID)
    calls = server.chat_requests
    second = runner.run(NEW_ID)
    assert server.chat_requests == calls
    assert second.from_cache and second.cost_usd == 0 and second.status == "duplicate"
    assert second.analysis == first.analysis
    stats = analyze_store.cache_stats()
    assert stats["tokens_saved"] >= first.input_tokens + first.output_tokens
    assert Decimal(str(stats["usd_saved"])) > 0
    assert len(chat_rows(analyze_store)) == 1
    refreshed = runner.run(NEW_ID, refresh=True)
    assert server.chat_requests == calls + 1 and not refreshed.from_cache
    # The model repeated itself: the analysis is stored once, but both calls are metered.
    assert refreshed.status == "duplicate" and len(chat_rows(analyze_store)) == 2


def test_another_model_is_another_cache_entry(analyze_store: Store, server: OpenAIServer
                                              ) -> None:
    analyze_store.analysis_runner().run(NEW_ID)
    other = analyze_store.analysis_runner("gpt-4o").run(NEW_ID)
    assert not other.from_cache and server.chat_requests == 2
    assert server.chat_bodies[-1]["model"] == "gpt-4o"


def test_the_saved_analysis_appears_in_similar(analyze_store: Store) -> None:
    analyze_store.analysis_runner().run(NEW_ID)
    found = analyze_store.similar(incident_id="INC-1", k=10)
    assert NEW_ID in [hit.incident_id for hit in found.hits]


def test_a_reply_failing_the_schema_is_repaired_once(analyze_store: Store,
                                                     server: OpenAIServer) -> None:
    def reply(messages: list[dict[str, Any]]) -> str:
        if len(messages) == 2:
            return analysis_reply(messages, severity="catastrophic")
        return analysis_reply(messages)

    server.chat_reply = reply
    outcome = analyze_store.analysis_runner().run(NEW_ID)
    assert outcome.status == "saved" and server.chat_requests == 2
    repair = server.chat_bodies[-1]["messages"][-1]["content"]
    assert "severity" in repair and "catastrophic" in repair
    rows = chat_rows(analyze_store)
    assert len(rows) == 2 and {row.analysis_id for row in rows} == {outcome.analysis_id}
    [saved] = analyze_store.analyses(NEW_ID)
    assert saved.input_tokens == server.chat_prompt_tokens
    assert outcome.input_tokens == server.chat_prompt_tokens


FAILURES: list[tuple[str, dict[str, Any], str, int]] = [
    ("http 401", {"fail_status": 401}, "HTTP 401 from", 0),
    ("http 404", {"fail_status": 404}, "no model 'gpt-4o-mini'", 0),
    ("http 500", {"fail_status": 500}, "HTTP 500 from", 0),
    ("timeout", {"fail_mode": "timeout", "timeout_delay_seconds": 10}, "no answer from", 0),
    ("dropped", {"fail_mode": "drop"}, "cannot reach", 0),
    ("html body", {"fail_mode": "not_json"}, "malformed reply", 0),
    ("wrong shape", {"fail_mode": "malformed"}, "malformed reply", 0),
    ("429 too long", {"rate_limited": 5, "retry_after": "600"},
     "Retry-After 600 s is over the 30 s bound", 0),
    ("not json", {"chat_reply": "Sure! Here is my analysis: it was phishing."},
     "the reply is not JSON (it starts 'Sure! Here is my analysis", 2),
    ("schema", {"chat_reply": json.dumps({"summary": "x", "severity": "high"})},
     "does not follow the analysis schema: category: field required (and 5 more) "
     "(after one repair attempt)", 2),
    ("length", {"finish_reason": "length"}, "cut at the output limit of 2000 tokens", 1),
]


@pytest.mark.parametrize(("knobs", "message", "billed"),
                         [pytest.param(*case[1:], id=case[0]) for case in FAILURES])
def test_failures_are_one_line_and_save_nothing(analyze_store: Store, server: OpenAIServer,
                                                knobs: dict[str, Any], message: str,
                                                billed: int) -> None:
    for name, value in knobs.items():
        setattr(server, name, value)
    with pytest.raises(AnalyzeError) as raised:
        analyze_store.analysis_runner().run(NEW_ID)
    text = str(raised.value)
    assert text.startswith(f"incident '{NEW_ID}': gpt-4o-mini: ") and "\n" not in text
    assert message in text
    assert analyze_store.analyses(NEW_ID) == []
    rows = chat_rows(analyze_store)
    assert len(rows) == billed and all(row.analysis_id is None for row in rows)
    assert sum(row.input_tokens for row in rows) == server.chat_prompt_tokens
    # Nothing cached: the next run asks the server again.
    server.fail_status, server.fail_mode, server.rate_limited = None, None, 0
    server.finish_reason, server.chat_reply = "stop", analysis_reply
    assert not analyze_store.analysis_runner().run(NEW_ID).from_cache


def test_server_down(analyze_store: Store, server: OpenAIServer) -> None:
    server.stop()
    with pytest.raises(AnalyzeError, match="cannot reach .*: .*refused"):
        analyze_store.analysis_runner().run(NEW_ID)
    assert analyze_store.analyses(NEW_ID) == []


def test_429_waits_for_retry_after_then_succeeds(analyze_store: Store,
                                                 server: OpenAIServer) -> None:
    server.rate_limited, server.retry_after = 2, "2"
    waits: list[float] = []
    runner = AnalysisRunner(analyze_store, retry=RetryPolicy(3, 5.0, waits.append))
    assert runner.run(NEW_ID).status == "saved"
    assert waits == [2.0, 2.0] and len(server.chat_bodies) == 3
    server.rate_limited = 3
    with pytest.raises(AnalyzeError, match="rate limited .* after 3 attempts"):
        runner.run(NEW_ID, refresh=True)


def test_a_reply_without_usage_is_saved_and_recorded_unpriced(analyze_store: Store,
                                                              server: OpenAIServer) -> None:
    server.omit_usage = True
    outcome = analyze_store.analysis_runner().run(NEW_ID)
    assert outcome.status == "saved"
    assert any("no token usage" in warning for warning in outcome.warnings)
    [row] = chat_rows(analyze_store)
    assert (row.input_tokens, row.cost_usd, row.analysis_id) == (0, None, outcome.analysis_id)
    [model] = [total for total in analyze_store.usage_by_model() if total.key == "gpt-4o-mini"]
    assert model.unpriced_calls == 1


@pytest.mark.parametrize("mode", ["function_calling", "json_mode"])
def test_other_output_modes(analyze_store: Store, server: OpenAIServer, mode: str) -> None:
    analyze_store.settings.analyze_output_mode = mode  # type: ignore[assignment]
    server.reject_json_schema = True
    assert analyze_store.analysis_runner().run(NEW_ID).status == "saved"
    body = server.chat_bodies[-1]
    if mode == "function_calling":
        assert body["tool_choice"]["function"]["name"] == "incident_analysis"
        assert "response_format" not in body
    else:
        assert body["response_format"] == {"type": "json_object"}


def test_a_server_rejecting_json_mode_says_which_setting(analyze_store: Store,
                                                         server: OpenAIServer) -> None:
    analyze_store.settings.analyze_output_mode = "json_mode"
    server.reject_json_object = True
    with pytest.raises(AnalyzeError, match="HTTP 400 .*INCIDEX_ANALYZE_OUTPUT_MODE"):
        analyze_store.analysis_runner().run(NEW_ID)
    analyze_store.settings.analyze_output_mode = "json_schema"
    assert analyze_store.analysis_runner().run(NEW_ID).status == "saved"


def test_an_unknown_incident(analyze_store: Store) -> None:
    with pytest.raises(AnalyzeError, match="incident 'INC-404': no such incident"):
        analyze_store.analysis_runner().run("INC-404")


def register(store: Store, count: int) -> list[str]:
    ids = [f"INC-Q-{number}" for number in range(count)]
    store.register_incidents([IncidentIn(incident_id=incident_id,
                                         title=f"Suspicious login number {number}",
                                         description="Impossible travel on a VPN account.")
                              for number, incident_id in enumerate(ids)])
    return ids


def test_concurrency_is_honoured(analyze_store: Store, server: OpenAIServer) -> None:
    ids = register(analyze_store, 6)
    server.chat_delay_seconds = 0.3
    runner = analyze_store.analysis_runner()
    report = runner.run_batch([runner.prepare(i) for i in ids], concurrency=3)
    assert len(report.outcomes) == 6 and not report.failures
    assert server.max_concurrent_chats == 3
    server.max_concurrent_chats = 0
    report = runner.run_batch([runner.prepare(i) for i in ids], concurrency=1, refresh=True)
    assert server.max_concurrent_chats == 1


def test_the_budget_stops_the_batch(analyze_store: Store, server: OpenAIServer) -> None:
    ids = register(analyze_store, 5)
    # A long reply, so that a call costs about as much as the estimate or more.
    server.chat_reply = lambda messages: analysis_reply(messages, summary="word " * 1500)
    runner = analyze_store.analysis_runner()
    prepared = [runner.prepare(i) for i in ids]
    estimate = prepared[0].estimate.cost_usd
    assert estimate is not None and estimate > 0
    budget = estimate * Decimal("2.2")
    report = runner.run_batch(prepared, concurrency=1, budget_usd=budget)
    assert report.budget_stopped and report.not_started
    assert server.chat_requests == len(report.outcomes) >= 1
    spent = Decimal(0)
    for outcome, item in zip(report.outcomes, prepared, strict=False):
        assert spent + (item.estimate.cost_usd or 0) <= budget  # it was allowed to start
        spent += outcome.cost_usd or 0
    assert spent == report.spent_usd
    next_estimate = prepared[len(report.outcomes)].estimate.cost_usd or 0
    assert spent + next_estimate > budget  # and the next one was rightly held back
    assert set(analyze_store.unanalysed_incident_ids()) == {NEW_ID, *report.not_started}
    everything = runner.run_batch(prepared, concurrency=2, budget_usd=budget * 100)
    assert not everything.budget_stopped and len(everything.outcomes) == 5


def test_a_budget_needs_a_price(analyze_store: Store) -> None:
    ids = register(analyze_store, 1)
    runner = analyze_store.analysis_runner("my-local-llama")
    with pytest.raises(StoreError, match="no price is known for 'my-local-llama'"):
        runner.run_batch([runner.prepare(ids[0])], budget_usd=Decimal(1))


def test_registering_keeps_known_incidents(analyze_store: Store) -> None:
    added = analyze_store.register_incidents([
        IncidentIn(incident_id="INC-1", title="renamed"), IncidentIn(incident_id="INC-Z")])
    assert added == [False, True]
    detail = analyze_store.incident("INC-1")
    assert detail is not None and detail.title == PAST[0][0]
    assert analyze_store.unanalysed_incident_ids() == [NEW_ID, "INC-Z"]
