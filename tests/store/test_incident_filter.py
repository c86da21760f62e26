"""The list's filter language: facets, phrases and OR, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.db.incident_filter import parse_incident_filter
from store.indicators import indicator_of
from store.schemas import AnalysisIn
from tests.conftest import make_record


def _save(store: Any, incident_id: str, title: str, severity: str, model: str,
          day: str) -> None:
    record = make_record(incident_id, model_name=model,
                         analysis={"summary": title, "severity": severity})
    record["incident"]["title"] = title
    record["incident"]["description"] = ""
    record["incident"]["initial_findings"] = ""
    record["usage"].update(start_time=f"{day}T10:00:00Z", end_time=f"{day}T10:00:05Z")
    store.save_many([(incident_id, AnalysisIn.model_validate(record))])


def _ids(store: Any, query: str) -> list[str]:
    found = sorted(r.incident_id for r in store.incidents_page(query=query, limit=50).rows)
    assert store.count_incidents(query) == len(found), query
    return found


@pytest.fixture(params=["selective", "broad"])
def filter_plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both SQLite plans: from the text index outward, and walking the sort index (taken when
    a filter matches at least BROAD_MATCH incidents; 1 here so that every filter does)."""
    if request.param == "broad":
        monkeypatch.setattr("store.db.queries.BROAD_MATCH", 1)
    return str(request.param)


def test_facets_phrases_and_or_filter_the_list(store: Any, filter_plan: str) -> None:
    _save(store, "A", "Lateral movement over SMB after phishing", "critical", "gpt-4o",
          "2026-11-01")
    _save(store, "B", "Movement lateral? no: a phishing e-mail", "low", "gpt-4o-mini",
          "2026-11-10")
    _save(store, "C", "Smishing text to the CFO", "high", "gemini-1.5-pro", "2026-11-20")
    assert _ids(store, "critical") == ["A"]  # a facet, not the word
    assert _ids(store, "severity:high,critical") == ["A", "C"]
    assert _ids(store, '"lateral movement"') == ["A"]
    assert _ids(store, "lateral movement") == ["A", "B"]
    assert _ids(store, "phishing OR smishing") == ["A", "B", "C"]
    # Facets hold for every alternative: low AND (smishing OR lateral).
    assert _ids(store, "smishing OR lateral low") == ["B"]
    assert _ids(store, "since:2026-11-05") == ["B", "C"]
    assert _ids(store, "since:2026-11-05 until:2026-11-10") == ["B"]
    assert _ids(store, "model:gpt-4o") == ["A"]
    assert _ids(store, "model:gpt-4o-mini phishing") == ["B"]
    assert _ids(store, "since:yesterday phishing") == ["A", "B"]  # the bad facet is left out


def test_the_description_says_how_the_filter_was_understood() -> None:
    parsed = parse_incident_filter('critical "lateral movement" smb OR rdp since:2026-11-01 '
                                   "model:gpt-4o until:someday severity:urgent")
    assert parsed.severities == ("critical",)
    assert parsed.since == date(2026, 11, 1) and parsed.until is None
    assert parsed.description() == (
        "severity critical; created since 2026-11-01; model gpt-4o; "
        "text “lateral movement” smb OR rdp; until:someday is not a date like 2026-11-01; "
        "severity:urgent is not a level (critical, high, medium, low, info, none)")


@given(st.text(max_size=80))
def test_any_typed_text_parses_without_raising(typed: str) -> None:
    parsed = parse_incident_filter(typed)
    assert isinstance(parsed.description(), str)
    for terms in parsed.alternatives:
        for term in terms:
            if term.indicator:  # matched as one exact value, in its canonical form
                assert len(term.words) == 1 and indicator_of(term.words[0]) is not None
            else:
                assert term.words and all(re.fullmatch(r"\w+", word) for word in term.words)


@settings(deadline=None, max_examples=80)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
       | st.lists(st.sampled_from(['"', "OR", ":", "since:", "model:", "*", "(", ")", "NEAR",
                                   "AND", "-", "^", "critical", "a b"]), max_size=8)
       .map(" ".join))
def test_any_typed_filter_runs_on_the_store(typed: str) -> None:
    # A real query for arbitrary input: quotes, colons, OR at either end, FTS5 syntax.
    from store.settings import Settings
    from store.store import Store

    global _shared_store
    if _shared_store is None:
        import tempfile
        from pathlib import Path

        _shared_store = Store.open(Settings(data_dir=Path(tempfile.mkdtemp())))
    _shared_store.incidents_page(query=typed, limit=5)
    _shared_store.count_incidents(typed)


_shared_store: Any = None


def _save_text(store: Any, incident_id: str, description: str,
               analysis: dict[str, Any]) -> None:
    record = make_record(incident_id, analysis=analysis)
    record["incident"].update(title=f"Alert {incident_id}", description=description,
                              initial_findings="")
    store.save_many([(incident_id, AnalysisIn.model_validate(record))])


def test_an_indicator_term_matches_exactly_not_by_prefix(store: Any, filter_plan: str) -> None:
    _save_text(store, "NEAR", "Scan from 192.0.2.181 over 1,248 hosts.", {"summary": "scan"})
    _save_text(store, "EXACT", "Scan from 192.0.2.248 over 12 hosts.", {"summary": "scan"})
    _save_text(store, "DOMAIN", "Mail from evil.example.net.", {"summary": "phish"})
    assert _ids(store, "192.0.2.248") == ["EXACT"]
    assert _ids(store, "192.0.2.24") == []
    assert _ids(store, "192.0.2.248 scan") == ["EXACT"]
    assert _ids(store, "192.0.2.181 OR evil[.]example[.]net") == ["DOMAIN", "NEAR"]
    assert _ids(store, "192.0.2.248 phish") == []
    assert parse_incident_filter("192.0.2.248 scan").description() == "text =192.0.2.248 scan"


def test_indicators_and_techniques_named_only_in_analyses_are_found(
        store: Any, filter_plan: str) -> None:
    _save_text(store, "RANSOM", "Files encrypted on the share.",
               {"summary": "ransomware", "severity": "high", "attack_techniques": [{"id": "T1486"}],
                "iocs": ["d41d8cd98f00b204e9800998ecf8427e"]})
    _save_text(store, "OTHER", "Files encrypted on the share.", {"summary": "T14860 typo"})
    assert _ids(store, "T1486") == ["RANSOM"]
    assert _ids(store, "D41D8CD98F00B204E9800998ECF8427E") == ["RANSOM"]
    assert _ids(store, "T1486 severity:high") == ["RANSOM"]


def test_one_batch_with_an_incident_twice_is_searchable_as_saved_one_by_one(
        store: Any, filter_plan: str) -> None:
    """The batch's incidents are upserted together (SQLite: multi-row statements): an incident
    met twice in one batch gathers the words of both analyses, as two saves would, and the
    text index agrees with the rows."""
    records = []
    for number, (incident_id, word) in enumerate([("A", "kerberoasting"), ("B", "typosquat"),
                                                  ("A", "exfiltration"), ("C", "ransomware")]):
        severity = ("critical", "high", "low", "high")[number]
        record = make_record(incident_id, analysis={"summary": f"{word} seen",
                                                    "severity": severity})
        record["incident"]["title"] = f"Case {incident_id}"
        record["usage"].update(start_time=f"2026-11-0{number + 1}T10:00:00Z",
                               end_time=f"2026-11-0{number + 1}T10:00:05Z")
        records.append((f"line {number + 1}", AnalysisIn.model_validate(record)))
    results = store.save_many(records)
    assert [r.status for r in results] == ["saved"] * 4
    assert _ids(store, "kerberoasting") == ["A"]
    assert _ids(store, "exfiltration") == ["A"]
    assert _ids(store, "kerberoasting exfiltration") == ["A"]
    assert _ids(store, "typosquat OR ransomware") == ["B", "C"]
    assert _ids(store, '"case a"') == ["A"]
    rows = {row.incident_id: row for row in store.incidents_page(limit=10).rows}
    assert (rows["A"].analysis_count, rows["A"].latest_severity) == (2, "low")
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as connection:
            connection.exec_driver_sql(
                "INSERT INTO incidents_fts(incidents_fts, rank) VALUES ('integrity-check', 1)")
