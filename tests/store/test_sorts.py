"""Incident list sorts: every sort and direction walks each incident exactly once, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from store.db.models import severity_rank
from store.schemas import INCIDENT_SORTS, AnalysisIn
from tests.conftest import make_record

SEVERITIES = ["critical", "High", "medium", "low", "info", None, "weird"]
MODELS = ["gpt-4o-mini", "gpt-4o", "local-llama"]  # local-llama is unpriced


def _record(incident_id: str, index: int, severity: str | None, model: str, tokens: int,
            hours: int) -> AnalysisIn:
    record = make_record(incident_id, model_name=model,
                         analysis={"summary": f"analysis {index}", "severity": severity})
    moment = (datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=hours)).isoformat()
    record["usage"].update(input_tokens=tokens, output_tokens=tokens // 3, start_time=moment,
                           end_time=moment, request_id=f"req-{index}")
    return AnalysisIn.model_validate(record)


def _expected(store: Any, sort: str, descending: bool) -> list[str]:
    """The order computed in Python from the rows' own values."""
    every = _walk(store, "incident_id", True, 1000)
    key_of = {
        "updated": lambda r: (r.updated_at, r.incident_id),
        "created": lambda r: (r.created_at, r.incident_id),
        "incident_id": lambda r: (r.incident_id,),
        "severity": lambda r: (severity_rank(r.latest_severity), r.updated_at, r.incident_id),
        "analyses": lambda r: (r.analysis_count, r.updated_at, r.incident_id),
        "cost": lambda r: (r.cost_usd, r.updated_at, r.incident_id),
    }[sort]
    return [r.incident_id for r in sorted(every, key=key_of, reverse=descending)]


def _walk(store: Any, sort: str, descending: bool, limit: int) -> list[Any]:
    rows: list[Any] = []
    page = store.incidents_page(sort=sort, descending=descending, limit=limit)
    while True:
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        page = store.incidents_page(sort=sort, descending=descending, limit=limit,
                                    after=page.next_cursor)


def _walk_back(store: Any, sort: str, descending: bool, limit: int) -> list[str]:
    pages: list[list[str]] = []
    page = store.incidents_page(sort=sort, descending=descending, limit=limit, from_end=True)
    while True:
        pages.insert(0, [r.incident_id for r in page.rows])
        if page.previous_cursor is None:
            return [incident for ids in pages for incident in ids]
        page = store.incidents_page(sort=sort, descending=descending, limit=limit,
                                    before=page.previous_cursor)


saves = st.lists(
    st.tuples(st.integers(0, 11), st.sampled_from(SEVERITIES), st.sampled_from(MODELS),
              st.integers(0, 5000), st.integers(0, 3)),
    min_size=1, max_size=30)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(saves=saves, limit=st.integers(1, 7))
def test_every_sort_pages_forwards_and_backwards_in_order(store: Any, saves: list[Any],
                                                          limit: int) -> None:
    with store.engine.begin() as connection:
        for table in ("run_metadata", "embeddings", "analyses", "incidents"):
            connection.execute(text(f"DELETE FROM {table}"))
    records = [(f"line {index}", _record(f"INC-{incident:02d}", index, severity, model, tokens,
                                          hours))
               for index, (incident, severity, model, tokens, hours) in enumerate(saves)]
    store.save_many(records)
    for sort in INCIDENT_SORTS:
        for descending in (True, False):
            expected = _expected(store, sort, descending)
            forwards = [r.incident_id for r in _walk(store, sort, descending, limit)]
            assert forwards == expected, (sort, descending)
            assert _walk_back(store, sort, descending, limit) == expected, (sort, descending)


def test_severity_and_cost_sorts_put_the_worst_and_dearest_first(store: Any) -> None:
    store.save_many([
        ("a", _record("LOW-1", 1, "low", "gpt-4o", 100_000, 3)),
        ("b", _record("CRIT-1", 2, "Critical", "local-llama", 10, 1)),
        ("c", _record("MED-1", 3, "medium", "gpt-4o-mini", 10, 2)),
        ("d", _record("MED-1", 4, "medium", "gpt-4o-mini", 20, 4)),
    ])
    by_severity = store.incidents_page(sort="severity").rows
    assert [r.incident_id for r in by_severity] == ["CRIT-1", "MED-1", "LOW-1"]
    by_cost = store.incidents_page(sort="cost").rows
    assert [r.incident_id for r in by_cost] == ["LOW-1", "MED-1", "CRIT-1"]
    assert by_cost[-1].cost_usd == Decimal(0)  # unpriced model: no known cost
    by_count = store.incidents_page(sort="analyses").rows
    assert by_count[0].incident_id == "MED-1" and by_count[0].analysis_count == 2
    reversed_ids = store.incidents_page(sort="severity", descending=False).rows
    assert [r.incident_id for r in reversed_ids] == ["LOW-1", "MED-1", "CRIT-1"]


def test_incident_cost_is_the_sum_of_its_calls(store: Any) -> None:
    store.save_many([("a", _record("INC-1", 1, "low", "gpt-4o", 1000, 1)),
                     ("b", _record("INC-1", 2, "low", "gpt-4o-mini", 3000, 2))])
    [row] = store.incidents_page(sort="cost").rows
    [by_incident] = store.usage_by_incident()
    assert abs(row.cost_usd - by_incident.cost_usd) < Decimal("0.000000001")


def test_find_incidents_by_exact_id_prefix_and_words(store: Any) -> None:
    store.save_many([("a", _record("INC-2026-0001", 1, "low", "gpt-4o", 10, 1)),
                     ("b", _record("INC-2026-0012", 2, "low", "gpt-4o", 10, 2)),
                     ("c", _record("OTHER-5", 3, "low", "gpt-4o", 10, 3))])
    assert [r.incident_id for r in store.find_incidents("INC-2026-0001")][0] == "INC-2026-0001"
    assert store.find_incidents("inc-2026-0012")[0].incident_id == "INC-2026-0012"
    prefixed = [r.incident_id for r in store.find_incidents("INC-2026-00")]
    assert set(prefixed) == {"INC-2026-0001", "INC-2026-0012"}
    assert [r.incident_id for r in store.find_incidents("Phishing wave OTHER")] == ["OTHER-5"]
    assert store.find_incidents("   ") == []
    assert store.find_incidents("100%_x") == []


def test_upgrading_an_0006_store_fills_the_sort_keys(settings: Any) -> None:
    from store.db.engine import make_engine
    from store.db.migrate import upgrade
    from store.locations import database_url

    engine = make_engine(database_url(settings))
    try:
        upgrade(engine, "0006")
        moment = datetime(2026, 10, 1, tzinfo=UTC).replace(tzinfo=None)
        with engine.begin() as connection:
            for incident_id, severity in (("A", "HIGH"), ("B", None), ("C", "info")):
                connection.execute(text(
                    "INSERT INTO incidents (incident_id, title, description, initial_findings, "
                    "created_at, updated_at, analysis_count, latest_severity) VALUES "
                    "(:id, '', '', '', :t, :t, 1, :severity)"),
                    {"id": incident_id, "t": moment, "severity": severity})
            for cost in ("0.0000123456789", "0.5", None):
                connection.execute(text(
                    "INSERT INTO run_metadata (kind, model_name, incident_id, input_tokens, "
                    "output_tokens, total_tokens, start_time, end_time, duration_seconds, "
                    "cost_usd) VALUES ('chat', 'm', 'A', 1, 1, 2, :t, :t, 0, :cost)"),
                    {"t": moment, "cost": cost})
        upgrade(engine)
        with engine.connect() as connection:
            found: dict[str, int] = dict(connection.execute(text(
                "SELECT incident_id, severity_rank FROM incidents")).all())
            costs: dict[str, int] = dict(connection.execute(text(
                "SELECT incident_id, cost_nano_usd FROM incidents")).all())
        assert found == {"A": severity_rank("high"), "B": 0, "C": severity_rank("info")}
        assert costs == {"A": 500_012_346, "B": 0, "C": 0}
    finally:
        engine.dispose()


def test_a_flood_of_near_duplicates_counts_once_as_seen_before(settings: Any) -> None:
    from store.store import Store

    # The same templated alert 40 times, as a noisy detection rule produces it.
    records = [(f"r{n}", _record(f"FLOOD-{n:03d}", n, "low", "gpt-4o-mini", 100, n % 5))
               for n in range(40)]
    with Store.open(settings) as store:
        store.save_many(records)
        store.warm_similar(["FLOOD-000"])
        [hit] = store.similar(incident_id="FLOOD-000").hits[:1]
        assert hit.near_duplicates > 0  # the flood is folded behind one row
        counts = store.known_similar_counts(["FLOOD-000"])
    assert 1 <= counts["FLOOD-000"] <= 10


def _plan(store: Any, statement: Any) -> str:
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
            rows = connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
            return "\n".join(str(row[-1]) for row in rows)
        connection.execute(text("SET enable_seqscan = off"))
        compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
        return "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {compiled}")))


def test_the_model_facet_probes_an_index_of_incident_and_model(store: Any) -> None:
    from sqlalchemy import select

    from store.db.models import Incident, table_of
    from store.db.queries import filter_conditions

    store.save_many([("a", _record("INC-1", 1, "low", "gpt-4o", 10, 1))])
    incidents = table_of(Incident)
    with store.engine.connect() as connection:
        conditions = filter_conditions(connection, "model:gpt-4o")
    plan = _plan(store, select(incidents.c.id).where(*conditions))
    assert "ix_analyses_incident_model" in plan
    assert [row.incident_id for row in store.incidents_page(query="model:gpt-4o").rows] == \
        ["INC-1"]


def test_an_id_prefix_lookup_uses_an_index_on_both_databases(store: Any) -> None:
    from sqlalchemy import select

    from store.db.models import Incident, table_of

    store.save_many([("a", _record("INC-2026-0001", 1, "low", "gpt-4o", 10, 1))])
    incidents = table_of(Incident).c
    statement = select(incidents.id).where(incidents.incident_id.like("INC-2026%", escape="/"))
    if store.engine.dialect.name == "sqlite":
        statement = statement.where(incidents.incident_id >= "INC-2026",
                                    incidents.incident_id < "INC-2026\U0010ffff")
    plan = _plan(store, statement)
    assert "Seq Scan" not in plan and "SCAN incidents" not in plan.replace("USING", "")
    assert [r.incident_id for r in store.find_incidents("INC-2026")] == ["INC-2026-0001"]
