"""Store behaviour on SQLite and PostgreSQL: saves, duplicates, upserts, costs and queries."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from store.ingest.records import validate_record
from store.schemas import AnalysisIn
from tests.conftest import make_record
from tests.support.journal import journaled_ids


def save(store: Any, record: dict[str, Any], label: str = "line 1") -> Any:
    return store.save_analysis(validate_record(record, label), label)


def test_save_then_read_back(store: Any) -> None:
    result = save(store, make_record("INC-7"))
    assert result.status == "saved" and result.analysis_id.startswith("an-")
    detail = store.incident("INC-7")
    assert detail.title == "Phishing wave INC-7"
    assert detail.created_at.tzinfo is not None
    [analysis] = store.analyses("INC-7")
    assert analysis.analysis == {"summary": "Phishing for INC-7", "severity": "high"}
    assert (analysis.input_tokens, analysis.output_tokens) == (1200, 300)
    assert analysis.cost_usd is not None and analysis.cost_usd > 0
    assert analysis.created_at == datetime(2026, 11, 20, 10, 0, 6, tzinfo=UTC)


def test_same_content_twice_is_stored_once(store: Any) -> None:
    first = save(store, make_record())
    second = save(store, make_record(), "line 2")
    assert (first.status, second.status) == ("saved", "duplicate")
    assert second.analysis_id == first.analysis_id
    assert store.summary().analyses == 1
    assert store.summary().model_calls == 1


def test_duplicates_inside_one_batch(store: Any) -> None:
    record = validate_record(make_record(), "x")
    results = store.save_many([("line 1", record), ("line 2", record)])
    assert [r.status for r in results] == ["saved", "duplicate"]
    assert store.summary().analyses == 1


def test_upsert_keeps_created_at_and_moves_updated_at(store: Any) -> None:
    save(store, make_record())
    later = make_record(analysis={"summary": "re-analysed", "severity": "low"})
    later["usage"]["start_time"] = "2026-11-22T08:00:00Z"
    later["usage"]["end_time"] = "2026-11-22T08:00:09Z"
    later["incident"]["title"] = "Phishing wave, renamed"
    save(store, later, "line 2")
    detail = store.incident("INC-1")
    assert detail.created_at == datetime(2026, 11, 20, 10, 0, 6, tzinfo=UTC)
    assert detail.updated_at == datetime(2026, 11, 22, 8, 0, 9, tzinfo=UTC)
    assert detail.title == "Phishing wave, renamed"
    [row] = store.incidents_page().rows
    assert (row.analysis_count, row.latest_severity) == (2, "low")
    assert [a.analysis["summary"] for a in store.analyses("INC-1")] == [
        "re-analysed", "Phishing for INC-1"]


def test_an_older_analysis_does_not_take_over_the_latest_severity(store: Any) -> None:
    save(store, make_record())
    older = make_record(analysis={"summary": "old", "severity": "low"})
    older["usage"]["start_time"] = "2026-11-01T08:00:00Z"
    older["usage"]["end_time"] = "2026-11-01T08:00:09Z"
    save(store, older, "line 2")
    [row] = store.incidents_page().rows
    assert row.latest_severity == "high"
    assert row.updated_at == datetime(2026, 11, 20, 10, 0, 6, tzinfo=UTC)


def test_empty_fields_do_not_erase_known_text(store: Any) -> None:
    save(store, make_record())
    bare = make_record(analysis={"summary": "second look"})
    bare["incident"] = {"incident_id": "INC-1"}
    save(store, bare, "line 2")
    assert store.incident("INC-1").description.startswith("Users in finance")


def test_cost_is_priced_at_write_time_and_unknown_models_cost_null(store: Any) -> None:
    save(store, make_record("INC-1"))
    save(store, make_record("INC-2", model_name="llama3.1:8b-local"))
    by_model = {u.key: u for u in store.usage_by_model()}
    assert by_model["gpt-4o-mini"].cost_usd == Decimal("0.00036")
    assert by_model["llama3.1:8b-local"].cost_usd == 0
    assert by_model["llama3.1:8b-local"].unpriced_calls == 1
    [unpriced] = store.analyses("INC-2")
    assert unpriced.cost_usd is None


def test_price_source_and_duration_are_stored(store: Any) -> None:
    from sqlalchemy import select

    from store.db.models import RunMetadata

    save(store, make_record())
    with store.engine.connect() as connection:
        row = connection.execute(select(RunMetadata.__table__)).mappings().one()
    assert row["price_source"].startswith("genai-prices ")
    assert row["duration_seconds"] == 6.0
    assert row["total_tokens"] == 1500
    assert row["request_id"] == "req-INC-1"


def test_usage_by_day_and_by_incident(store: Any) -> None:
    now = datetime.now(UTC)
    for day in range(3):
        record = make_record(f"INC-{day}")
        start = now - timedelta(days=day, minutes=5)
        record["usage"]["start_time"] = start.isoformat()
        record["usage"]["end_time"] = (start + timedelta(seconds=3)).isoformat()
        record["usage"]["input_tokens"] = 1000 * (day + 1)
        save(store, record, f"line {day}")
    days = store.usage_by_day(7)
    assert len(days) == 7 and days[-1].day == now.date()
    assert [d.calls for d in days[-3:]] == [1, 1, 1]
    top = store.usage_by_incident(limit=2)
    assert [t.key for t in top] == ["INC-2", "INC-1"]


def test_keyset_pages_walk_every_incident_once(store: Any) -> None:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    records = []
    for index in range(25):
        record = make_record(f"INC-{index:03d}")
        moment = base + timedelta(hours=index // 2)  # pairs share a timestamp
        record["usage"]["start_time"] = moment.isoformat()
        record["usage"]["end_time"] = moment.isoformat()
        records.append((f"line {index}", AnalysisIn.model_validate(record)))
    store.save_many(records)
    seen: list[str] = []
    page = store.incidents_page(limit=10)
    while True:
        seen.extend(row.incident_id for row in page.rows)
        if page.next_cursor is None:
            break
        page = store.incidents_page(limit=10, after=page.next_cursor)
    assert len(seen) == 25 and len(set(seen)) == 25
    assert seen[0] == "INC-024" and seen[-1] == "INC-000"
    last = store.incidents_page(limit=10, from_end=True)
    assert [r.incident_id for r in last.rows][-1] == "INC-000"
    assert last.next_cursor is None and last.previous_cursor is not None
    back = store.incidents_page(limit=10, before=last.previous_cursor)
    assert back.rows[-1].incident_id == seen[seen.index(last.rows[0].incident_id) - 1]


def test_text_filter_matches_words_and_ids(store: Any) -> None:
    save(store, make_record("INC-1"))
    ransom = make_record("RW-77", analysis={"summary": "ransomware"})
    ransom["incident"]["title"] = "Ransomware on file server"
    ransom["incident"]["description"] = "Files encrypted with the .lockbit extension"
    save(store, ransom, "line 2")
    assert [r.incident_id for r in store.incidents_page(query="lockbit").rows] == ["RW-77"]
    assert [r.incident_id for r in store.incidents_page(query="ransom file").rows] == ["RW-77"]
    assert [r.incident_id for r in store.incidents_page(query="RW-77").rows] == ["RW-77"]
    assert store.count_incidents("finance") == 1
    assert store.count_incidents("attachment") == 2
    assert store.count_incidents('"; DROP TABLE incidents; --') == 0
    assert store.count_incidents() == 2


def test_one_bad_record_does_not_stop_the_batch(store: Any) -> None:
    good = validate_record(make_record("INC-1"), "line 1")
    too_big = copy.deepcopy(make_record("INC-2"))
    too_big["incident"]["description"] = "x" * (store.limits.max_text_chars + 1)
    bad = validate_record(too_big, "line 2")
    results = store.save_many([("line 1", good), ("line 2", bad)])
    assert [r.status for r in results] == ["saved", "error"]
    assert "line 2 (incident 'INC-2'): incident.description: 1,000,001 characters" in (
        results[1].error)
    assert store.summary().analyses == 1


def test_the_journal_holds_saved_analyses_once(store: Any, isolated_directories: Any) -> None:
    from store.backup.journal import journal_directory, scan

    first = save(store, make_record("../../etc/passwd"))
    save(store, make_record("../../etc/passwd"), "line 2")
    assert journaled_ids(isolated_directories / "backups") == [first.analysis_id]
    [batch] = scan(journal_directory(isolated_directories / "backups"),
                   sealer=store.journal.sealer).committed()
    [record] = batch.landed()
    assert record.body["incident"]["incident_id"] == "../../etc/passwd"
    assert list(journal_directory(isolated_directories / "backups").iterdir()) == [
        batch.path]


@pytest.mark.parametrize("severity_key", ["severity", "risk_level", "priority"])
def test_severity_comes_from_the_usual_keys(store: Any, severity_key: str) -> None:
    save(store, make_record(analysis={severity_key: "  CRITICAL "}))
    assert store.incidents_page().rows[0].latest_severity == "critical"
