"""What one journal line holds about a write, and turning it back into rows.

Most lines are saved analyses. Other writes are entries of their own (`entry` in the body):
`incident` (an incident added without an analysis, `incident add`), `runs` (usage rows of
model calls not written with an analysis: failed, repaired or repeated calls) and
`restriction` (an incident restricted to teams, or lifted). Their record id is
`entry:<uuid>`; they are journaled right after their commit, as a settled batch.

Invariants: a body carries everything the save computed that replay cannot recompute the
same way (the batch's clock, the price at save time), so replaying a body writes the rows the
save wrote, with the same analysis_id (a body whose content gives another id is refused).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from store.errors import RecordError
from store.ingest.records import KeyedHash, Limits, PreparedSave, prepare
from store.schemas import AnalysisIn, IncidentIn

if TYPE_CHECKING:
    from sqlalchemy import Engine

# Replay accepts what was once saved, whatever today's size limits say.
REPLAY_LIMITS = Limits(max_text_chars=1 << 40, max_analysis_bytes=1 << 40,
                       max_document_bytes=1 << 40)


def journal_body(prepared: PreparedSave, saved_at: datetime) -> dict[str, Any]:
    """The journal body of one record about to be written."""
    record = prepared.record
    run = prepared.run_row
    return {
        "analysis_id": prepared.analysis_id,
        "incident": record.incident.model_dump(),
        "model_name": record.model_name,
        "analysis": record.analysis,
        "usage": record.usage.model_dump(mode="json") if record.usage else None,
        "content_hash": prepared.content_hash,
        "saved_at": saved_at.isoformat(),
        "created_at": prepared.event_time.isoformat(),
        "cost_usd": None if run is None or run["cost_usd"] is None else str(run["cost_usd"]),
        "price_source": None if run is None else run["price_source"],
    }


def legacy_body(document: dict[str, Any]) -> dict[str, Any]:
    """The journal body of a legacy per-analysis JSON backup (written before the journal)."""
    return {
        "analysis_id": document["analysis_id"],
        "incident": document["incident"],
        "model_name": document["model_name"],
        "analysis": document["analysis"],
        "usage": document.get("usage"),
        "content_hash": document.get("content_hash"),
        "saved_at": document["created_at"],
        "created_at": document["created_at"],
    }


def prepared_from_body(body: dict[str, Any], where: str, keyed_hash: KeyedHash | None = None
                       ) -> PreparedSave:
    """The rows a body stands for; RecordError naming `where` when it cannot be replayed
    (`keyed_hash`: the restored store's content hash when it seals, as a save computes it;
    a body journaled before the store sealed was identified by the plain hash instead)."""
    try:
        record = AnalysisIn.model_validate({key: body[key] for key in
                                            ("incident", "analysis", "model_name", "usage")})
        saved_at = datetime.fromisoformat(body["saved_at"])
    except (KeyError, ValueError) as error:
        raise RecordError(where, "body", f"not a saved analysis ({_first(error)})") from None
    prepared = prepare(record, where, REPLAY_LIMITS, saved_at, keyed_hash)
    if prepared.analysis_id != body["analysis_id"] and keyed_hash is not None:
        prepared = prepare(record, where, REPLAY_LIMITS, saved_at)
    if prepared.analysis_id != body["analysis_id"]:
        raise RecordError(where, "analysis_id", f"{body['analysis_id']!r} does not match its "
                          f"content (which gives {prepared.analysis_id!r})")
    if prepared.run_row is not None and "price_source" in body:
        cost = body.get("cost_usd")
        prepared.run_row["cost_usd"] = None if cost is None else Decimal(cost)
        prepared.run_row["price_source"] = body.get("price_source")
    return prepared


def _first(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _entry_id() -> str:
    return f"entry:{uuid.uuid4().hex}"


def incident_body(incident: IncidentIn, added_at: datetime) -> dict[str, Any]:
    """The journal body of an incident added without an analysis (sealed like an analysis:
    it holds the incident's text)."""
    return {"entry": "incident", "analysis_id": _entry_id(), "incident": incident.model_dump(),
            "added_at": added_at.isoformat()}


def runs_body(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The journal body of usage rows written without an analysis (numbers and ids only)."""
    return {"entry": "runs", "analysis_id": _entry_id(), "rows": [
        {key: (value.isoformat() if isinstance(value, datetime)
               else str(value) if isinstance(value, Decimal) else value)
         for key, value in row.items()} for row in rows]}


def restriction_body(incident_id: str, teams: Iterable[str], by: str) -> dict[str, Any]:
    """The journal body of a restriction set or lifted (no teams)."""
    return {"entry": "restriction", "analysis_id": _entry_id(), "incident_id": incident_id,
            "teams": sorted(teams), "by": by}


def replay_entry(engine: Engine, entry: str, body: dict[str, Any], where: str) -> int:
    """Write the rows of one entry other than an analysis; how many rows were new.
    RecordError naming `where` when the body is not one."""
    try:
        if entry == "incident":
            return _replay_incident(engine, body)
        if entry == "runs":
            return _replay_runs(engine, body["rows"])
        if entry == "restriction":
            return _replay_restriction(engine, body)
    except (KeyError, TypeError, ValueError) as error:
        raise RecordError(where, "body", f"not a {entry} entry ({_first(error)})") from None
    raise RecordError(where, "entry", f"unknown entry {entry!r}")


def _replay_incident(engine: Engine, body: dict[str, Any]) -> int:
    from store.analyze.incidents import register_incidents

    incident = IncidentIn.model_validate(body["incident"])
    return sum(register_incidents(engine, [incident],
                                  now=datetime.fromisoformat(body["added_at"])))


def _replay_runs(engine: Engine, rows: list[dict[str, Any]]) -> int:
    from sqlalchemy import select

    from store.db.engine import write_transaction
    from store.db.models import Analysis, RunMetadata, table_of

    analyses = table_of(Analysis).c
    values = []
    for row in rows:
        value = dict(row)
        for name in ("start_time", "end_time"):
            value[name] = datetime.fromisoformat(value[name])
        value["cost_usd"] = None if value.get("cost_usd") is None else Decimal(value["cost_usd"])
        values.append(value)
    runs = table_of(RunMetadata).c
    with write_transaction(engine) as connection:
        # Replay is idempotent: a batch replayed again over a snapshot that holds its rows
        # (the slack around a snapshot) finds the same call there, linked or unlinked since.
        values = [v for v in values if connection.execute(select(runs.id).where(
            runs.start_time == v["start_time"], runs.end_time == v["end_time"],
            runs.model_name == v["model_name"], runs.kind == v["kind"],
            runs.input_tokens == v["input_tokens"],
            runs.output_tokens == v["output_tokens"]).limit(1)).first() is None]
        linked = {v["analysis_id"] for v in values if v.get("analysis_id")}
        present = set(connection.execute(select(analyses.analysis_id).where(
            analyses.analysis_id.in_(linked))).scalars()) if linked else set()
        for value in values:
            if value.get("analysis_id") not in present:
                value["analysis_id"] = None  # its analysis was forgotten since
        if values:
            connection.execute(table_of(RunMetadata).insert(), values)
    return len(values)


def _replay_restriction(engine: Engine, body: dict[str, Any]) -> int:
    from sqlalchemy import select

    from store.access import directory
    from store.access.roles import normalise_teams
    from store.db.engine import write_transaction
    from store.db.models import Incident, table_of

    incidents = table_of(Incident).c
    incident_id = str(body["incident_id"])
    with write_transaction(engine) as connection:
        if connection.execute(select(incidents.id).where(
                incidents.incident_id == incident_id)).first() is None:
            return 0  # its incident's lines did not open (forgotten since): nothing to restrict
        directory.set_restriction(connection, incident_id,
                                  normalise_teams(list(body["teams"])), str(body["by"]))
    return 1
