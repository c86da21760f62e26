"""`incidex incident add` and `incidex analyze` as scripts call them, against a real HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.test_analyze import analysis_reply
from tests.support.openai_server import OpenAIServer
from tests.test_cli_similar import incidex

INCIDENTS = [
    {"incident_id": "NEW-1", "title": "Invoice phishing with a macro attachment",
     "description": "bob.smith@acme-corp.com opened invoice.xlsm from a fake supplier."},
    {"incident_id": "NEW-2", "title": "Ransomware note on a logistics file server",
     "description": "Files renamed with a .lockbit extension overnight."},
]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(dimension=64, chat_reply=analysis_reply) as running:
        yield running


@pytest.fixture
def env(server: OpenAIServer, tmp_path: Path) -> dict[str, str]:
    """Environment of a store with two registered incidents, pointed at the server."""
    settings = {"INCIDEX_OPENAI_BASE_URL": server.base_url, "INCIDEX_OPENAI_API_KEY": "k",
                "INCIDEX_CHAT_MODEL": "gpt-4o-mini", "INCIDEX_ANALYZE_TIMEOUT_SECONDS": "5"}
    source = tmp_path / "incidents.jsonl"
    source.write_text("".join(json.dumps(incident) + "\n" for incident in INCIDENTS))
    added = incidex("incident", "add", str(source), env=settings)
    assert added.returncode == 0, added.stderr
    assert [json.loads(line)["status"] for line in added.stdout.splitlines()] == ["added"] * 2
    return settings


def test_analyze_then_a_cache_hit_then_the_unanalysed(env: dict[str, str],
                                                      server: OpenAIServer) -> None:
    first = incidex("analyze", "NEW-1", "--json", env=env)
    assert first.returncode == 0, first.stderr
    [line] = [json.loads(text) for text in first.stdout.splitlines()]
    assert line["status"] == "saved" and not line["from_cache"]
    assert line["analysis"]["schema_version"] == "incident_analysis/1"
    assert line["analysis"]["iocs"]["email_addresses"] == ["bob.smith@acme-corp.com"]
    assert "incidex: 1 incident(s) with gpt-4o-mini: about" in first.stderr
    again = incidex("analyze", "NEW-1", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["from_cache"] is True and server.chat_requests == 1
    assert "1 analysed (1 from the cache), $0.0000 spent" in again.stderr
    stats = json.loads(incidex("cache", "stats", "--json", env=env).stdout)
    assert stats["tokens_saved"] == server.chat_prompt_tokens + server.chat_completion_tokens
    rest = incidex("analyze", "--unanalysed", "--json", "--concurrency", "2", env=env)
    assert rest.returncode == 0, rest.stderr
    assert [json.loads(text)["incident_id"] for text in rest.stdout.splitlines()] == ["NEW-2"]
    nothing = incidex("analyze", "--unanalysed", env=env)
    assert nothing.returncode == 0 and "no incident is waiting" in nothing.stderr
    refreshed = incidex("analyze", "NEW-2", "--refresh", env=env)
    assert refreshed.returncode == 0 and server.chat_requests == 3
    assert refreshed.stdout.startswith("NEW-2  duplicate  an-")


def test_a_failed_call_is_one_line_and_exit_1(env: dict[str, str], server: OpenAIServer) -> None:
    server.fail_status = 401
    result = incidex("analyze", "NEW-1", "NEW-2", "UNKNOWN", env=env)
    assert result.returncode == 1 and result.stdout == ""
    as_json = incidex("analyze", "UNKNOWN", "--json", env=env)
    assert json.loads(as_json.stdout) == {
        "incident_id": "UNKNOWN", "status": "error",
        "error": "incident 'UNKNOWN': no such incident in this store"}
    errors = [line for line in result.stderr.splitlines() if "failed" not in line
              and "about" not in line]
    assert errors[0] == "incidex: incident 'UNKNOWN': no such incident in this store"
    assert sum("HTTP 401" in line and "INCIDEX_OPENAI_API_KEY" in line for line in errors) == 2
    assert "Traceback" not in result.stderr


def test_the_budget_stops_the_run(env: dict[str, str], server: OpenAIServer) -> None:
    result = incidex("analyze", "--unanalysed", "--budget", "0.0000001", "--json", env=env)
    assert result.returncode == 1 and server.chat_requests == 0
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == [
        "not_started", "not_started"]
    assert "the estimate is over the budget" in result.stderr
    assert "not started (NEW-1, NEW-2)" in result.stderr


def test_usage_errors(env: dict[str, str]) -> None:
    assert incidex("analyze", env=env).returncode == 2
    assert incidex("analyze", "NEW-1", "--unanalysed", env=env).returncode == 2
    assert incidex("analyze", "NEW-1", "--limit", "3", env=env).returncode == 2
