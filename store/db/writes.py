"""Writing prepared records: one transaction per batch, every record whole or absent."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, case, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.crypto import normalised_words
from store.db.engine import run_write
from store.db.identity import allocate_seqs
from store.db.indicators import stored_form
from store.db.models import (
    Analysis,
    Embedding,
    Incident,
    IncidentIndicator,
    RunMetadata,
    cost_nanos,
    severity_rank,
    table_of,
)
from store.errors import InvalidVector, StoreUnavailable
from store.indicators import indicators_of_incident
from store.ingest.records import PreparedSave, utc_now
from store.schemas import SaveResult

log = logging.getLogger("incidex.store")
# About 55,000 tokens: far more words than an incident's text holds, far below PostgreSQL's
# 1 MB tsvector limit.
MAX_SEARCH_TERMS_CHARS = 1_000_000


def write_batch(engine: Engine, batch: Sequence[PreparedSave],
                extra_runs: Sequence[dict[str, Any]] = ()) -> list[SaveResult]:
    """Write a batch in one transaction; if that fails, write each record on its own.

    extra_runs are run_metadata rows of the batch as a whole (its embedding calls).
    A transaction another writer's aborted (deadlock, serialisation) is tried again.
    """
    if not batch:
        return []

    def whole_batch(connection: Connection) -> list[SaveResult]:
        if extra_runs:
            connection.execute(table_of(RunMetadata).insert(), list(extra_runs))
        return _write(connection, batch)

    try:
        return run_write(engine, whole_batch)
    except (IntegrityError, DBAPIError, InvalidVector) as error:
        if len(batch) == 1:
            return [_failed(batch[0], error)]
        log.info("batch of %d failed (%s); retrying record by record", len(batch), error)
    if extra_runs:
        run_write(engine, lambda connection: connection.execute(
            table_of(RunMetadata).insert(), list(extra_runs)))
    results: list[SaveResult] = []
    for prepared in batch:
        try:
            results.extend(run_write(engine, partial(_write, batch=[prepared])))
        except (IntegrityError, DBAPIError, InvalidVector) as error:
            results.append(_failed(prepared, error))
    return results


def _write(connection: Connection, batch: Sequence[PreparedSave]) -> list[SaveResult]:
    existing = _existing_pks(connection, [p.analysis_id for p in batch])
    fresh: list[PreparedSave] = []
    seen: set[str] = set()
    for prepared in batch:
        if prepared.analysis_id not in existing and prepared.analysis_id not in seen:
            fresh.append(prepared)
            seen.add(prepared.analysis_id)
    pks: dict[str, int] = {}
    if fresh:
        # Every writer locks incident rows in one global order (by id), so two batches
        # can wait on each other but never in a cycle; input order deadlocked writers
        # sharing incidents. Analyses of an incident are written only by the holder of its
        # row lock. The sort is stable: one incident's records keep their input order,
        # which decides its text and created_at.
        fresh.sort(key=lambda p: p.incident_id)
        _upsert_incidents(connection, fresh)
        _insert_indicators(connection, fresh)
        pks = _insert_analyses(connection, fresh)
        _insert_runs(connection, fresh)
        _insert_embeddings(connection, fresh, pks)
    results = []
    for prepared in batch:
        incident_id = prepared.incident_id
        if prepared.analysis_id in pks and prepared.analysis_id in seen:
            results.append(SaveResult(incident_id, prepared.analysis_id, "saved",
                                      pk=pks[prepared.analysis_id]))
            seen.discard(prepared.analysis_id)
        else:
            pk = existing.get(prepared.analysis_id) or pks.get(prepared.analysis_id)
            results.append(SaveResult(incident_id, prepared.analysis_id, "duplicate", pk=pk))
    return results


def _existing_pks(connection: Connection, analysis_ids: list[str]) -> dict[str, int]:
    analyses = table_of(Analysis).c
    found: dict[str, int] = {}
    for start in range(0, len(analysis_ids), 500):
        chunk = analysis_ids[start : start + 500]
        rows = connection.execute(
            select(analyses.analysis_id, analyses.id).where(analyses.analysis_id.in_(chunk))
        )
        found.update({analysis_id: pk for analysis_id, pk in rows})
    return found


def _dialect_insert(connection: Connection, table: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StoreUnavailable(f"unsupported database: {connection.dialect.name}")


def clear_search_terms(prepared: PreparedSave) -> str:
    """The words a clear-text record gives the text index: its description, findings and
    analysis, normalised as the blind index normalises them (so a store that does not encrypt
    still finds incidents by the words of their text)."""
    incident = prepared.record.incident
    return " ".join(normalised_words("\n".join((incident.description,
                                                incident.initial_findings,
                                                prepared.analysis_json))))


def _upsert_incidents(connection: Connection, fresh: Sequence[PreparedSave]) -> None:
    table = table_of(Incident)
    statement = _dialect_insert(connection, table)
    excluded = statement.excluded
    current = table.c

    def keep_unless_empty(name: str) -> Any:
        return case((excluded[name] != "", excluded[name]), else_=current[name])

    # Rows gather the search terms of every analysis (blind-index tokens when sealed, the
    # normalised words when clear), up to a cap (words past it are not found by the filter).
    terms = case((excluded.search_terms == "", current.search_terms),
                 (current.search_terms == "", excluded.search_terms),
                 (func.length(current.search_terms) > MAX_SEARCH_TERMS_CHARS,
                  current.search_terms),
                 else_=current.search_terms + " " + excluded.search_terms)
    newer = excluded.latest_analysis_at >= func.coalesce(
        current.latest_analysis_at, excluded.latest_analysis_at
    )
    statement = statement.on_conflict_do_update(
        index_elements=["incident_id"],
        set_={
            "title": keep_unless_empty("title"),
            "description": keep_unless_empty("description"),
            "initial_findings": keep_unless_empty("initial_findings"),
            "key_id": func.coalesce(excluded.key_id, current.key_id),
            "search_terms": terms,
            "updated_at": case(
                (excluded.updated_at > current.updated_at, excluded.updated_at),
                else_=current.updated_at,
            ),
            "analysis_count": current.analysis_count + literal_column("1"),
            "latest_severity": case((newer, excluded.latest_severity),
                                    else_=current.latest_severity),
            "latest_analysis_at": case((newer, excluded.latest_analysis_at),
                                       else_=current.latest_analysis_at),
            "severity_rank": case((newer, excluded.severity_rank), else_=current.severity_rank),
            "cost_nano_usd": current.cost_nano_usd + excluded.cost_nano_usd,
        },
    )
    if connection.dialect.name == "sqlite":
        # RETURNING makes SQLAlchemy send the rows as a few multi-row INSERTs instead of one
        # statement per row: the text index's trigger then runs inside one statement, and
        # FTS5 flushes its pending terms at every statement's savepoint (per row, that flush
        # cost about 0.3 ms a record). The same upsert, row by row in input order, so the
        # same result. (PostgreSQL refuses one statement touching a row twice: row by row.)
        statement = statement.returning(current.id)
    rows = []
    for prepared in fresh:
        incident = prepared.record.incident
        sealed = prepared.sealed
        rows.append({
            "incident_id": incident.incident_id,
            "title": incident.title,
            "description": sealed.description if sealed else incident.description,
            "initial_findings": sealed.initial_findings if sealed else incident.initial_findings,
            "key_id": sealed.key_id if sealed else None,
            "search_terms": sealed.search_terms if sealed else clear_search_terms(prepared),
            "created_at": prepared.event_time,
            "updated_at": prepared.event_time,
            "analysis_count": 1,
            "latest_severity": prepared.severity,
            "latest_analysis_at": prepared.event_time,
            "severity_rank": severity_rank(prepared.severity),
            "cost_nano_usd": cost_nanos(run["cost_usd"]) if (run := prepared.run_row) else 0,
        })
    connection.execute(statement, rows)


def _insert_indicators(connection: Connection, fresh: Sequence[PreparedSave]) -> None:
    """The indicators each record brings to its incident (those already known are kept)."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    form = stored_form(connection)
    for prepared in fresh:
        incident = prepared.record.incident
        for indicator in indicators_of_incident(incident.title, incident.description,
                                                incident.initial_findings,
                                                [prepared.record.analysis]):
            value = form(indicator.value)
            rows[(value, prepared.incident_id)] = {
                "value": value, "incident_id": prepared.incident_id, "kind": indicator.kind}
    if rows:
        statement = _dialect_insert(connection, table_of(IncidentIndicator))
        connection.execute(statement.on_conflict_do_nothing(), list(rows.values()))


def _insert_analyses(connection: Connection, fresh: Sequence[PreparedSave]) -> dict[str, int]:
    table = table_of(Analysis)
    statement = table.insert().returning(
        table.c.id, table.c.analysis_id, sort_by_parameter_order=True
    )
    rows = [
        {
            "analysis_id": p.analysis_id,
            "incident_id": p.incident_id,
            "model_name": p.record.model_name,
            "analysis_json": p.sealed.analysis_json if p.sealed else p.analysis_json,
            "key_id": p.sealed.key_id if p.sealed else None,
            "content_hash": p.content_hash,
            "severity": p.severity,
            "created_at": p.event_time,
        }
        for p in fresh
    ]
    return {analysis_id: pk for pk, analysis_id in connection.execute(statement, rows)}


def _insert_runs(connection: Connection, fresh: Sequence[PreparedSave]) -> None:
    rows = [p.run_row for p in fresh if p.run_row is not None]
    if rows:
        connection.execute(table_of(RunMetadata).insert(), rows)


def _insert_embeddings(
    connection: Connection, fresh: Sequence[PreparedSave], pks: dict[str, int]
) -> None:
    now = utc_now()
    rows = [
        {
            "analysis_pk": pks[p.analysis_id],
            "embedder": p.embedder,
            "dimension": p.dimension,
            "status": "ready" if p.vector is not None else "pending",
            "vector": p.vector,
            "updated_at": now,
        }
        for p in fresh
        if p.embedder is not None
    ]
    if rows:
        insert_embedding_rows(connection, rows)


def insert_embedding_rows(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert embedding rows, each with a fresh write sequence number; InvalidVector (and
    nothing written by the caller's transaction) when a ready row's vector is unusable."""
    for row in rows:
        problem = vector_problem(row.get("vector"), row.get("dimension"), row.get("status"))
        if problem is not None:
            raise InvalidVector(int(row["analysis_pk"]), problem)
    if not rows:
        return
    first = allocate_seqs(connection, len(rows))
    numbered = [{**row, "seq": first + offset} for offset, row in enumerate(rows)]
    connection.execute(table_of(Embedding).insert(), numbered)


def vector_problem(vector: bytes | None, dimension: int | None, status: str | None = "ready"
                   ) -> str | None:
    """Why a stored vector cannot be searched, or None when it can (pending rows have none)."""
    if status != "ready":
        return None if vector is None else f"a {status} row carries a vector"
    if vector is None:
        return "no vector (NULL) in a ready row"
    if not dimension or dimension <= 0:
        return f"dimension {dimension} is not positive"
    if len(vector) != 4 * dimension:
        return (f"{len(vector)} bytes where dimension {dimension} needs {4 * dimension}"
                if vector else "an empty (zero-length) vector")
    import numpy as np

    if not np.isfinite(np.frombuffer(vector, dtype=np.float32)).all():
        return "the vector holds NaN or infinite values"
    return None


def _failed(prepared: PreparedSave, error: Exception) -> SaveResult:
    if isinstance(error, InvalidVector):
        return SaveResult(prepared.incident_id, prepared.analysis_id, "error",
                          error=f"{prepared.label}: vector: {error.problem}")
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    problem = text[0] if text else type(error).__name__
    return SaveResult(prepared.incident_id, prepared.analysis_id, "error",
                      error=f"{prepared.label}: database refused the record ({problem})")
