"""Incidents waiting for an analysis: registering them without one, and finding them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from store.crypto import cipher_of
from store.db.engine import read_connection, write_transaction
from store.db.models import Incident, table_of
from store.errors import StoreUnavailable
from store.ingest.records import utc_now
from store.schemas import IncidentIn


def register_incidents(engine: Engine, incidents: Sequence[IncidentIn],
                       now: datetime | None = None) -> list[bool]:
    """Add incidents that have no analysis yet, dated `now` (the clock); True for each one
    that was new.

    A known incident is left as it is: its text changes only with a saved analysis.
    """
    if not incidents:
        return []
    table = table_of(Incident)
    now = now or utc_now()
    sealed = seal_incident_texts(engine, incidents)
    with write_transaction(engine) as connection:
        dialect = connection.dialect.name
        insert: Any
        if dialect == "postgresql":
            insert = postgresql.insert(table)
        elif dialect == "sqlite":
            insert = sqlite.insert(table)
        else:
            raise StoreUnavailable(f"unsupported database: {dialect}")
        statement = insert.on_conflict_do_nothing(index_elements=["incident_id"]).returning(
            table.c.incident_id)
        added: set[str] = set()
        for incident in incidents:
            row = connection.execute(statement, {
                "incident_id": incident.incident_id, "title": incident.title,
                **sealed[incident.incident_id],
                "created_at": now, "updated_at": now, "analysis_count": 0,
            }).first()
            if row is not None:
                added.add(row[0])
    return [incident.incident_id in added for incident in incidents]


def seal_incident_texts(engine: Engine, incidents: Sequence[IncidentIn]
                        ) -> dict[str, dict[str, Any]]:
    """The stored columns of each incident's text: sealed (with key id and blind-index
    tokens) when the store seals, else as given."""
    cipher = cipher_of(engine)
    if cipher is None or not cipher.sealing:
        return {incident.incident_id: {"description": incident.description,
                                       "initial_findings": incident.initial_findings}
                for incident in incidents}
    keys = cipher.write_keys([incident.incident_id for incident in incidents])
    columns = {}
    for incident in incidents:
        key = keys[incident.incident_id]
        columns[incident.incident_id] = {
            "description": cipher.seal_field(key, "incidents", "description",
                                             incident.incident_id, incident.description),
            "initial_findings": cipher.seal_field(key, "incidents", "initial_findings",
                                                  incident.incident_id,
                                                  incident.initial_findings),
            "key_id": key[0].hex(),
            "search_terms": cipher.index.tokens((incident.description,
                                                 incident.initial_findings)),
        }
    return columns


def unanalysed_incident_ids(engine: Engine, limit: int | None = None) -> list[str]:
    """Incidents with no analysis at all, oldest first (they have waited longest)."""
    table = table_of(Incident)
    statement = (select(table.c.incident_id).where(table.c.analysis_count == 0)
                 .order_by(table.c.created_at, table.c.incident_id))
    if limit is not None:
        statement = statement.limit(limit)
    with read_connection(engine) as connection:
        return [row[0] for row in connection.execute(statement)]
