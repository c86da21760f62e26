"""The audit table and its hash chain: appending an entry under the chain-head lock.

Each entry's hash is an HMAC (the chain key) over its own fields and the hash of the entry
before it, so changing, removing or reordering an entry breaks every link after it for anyone
who lacks the key. Appends are serialised across processes: SQLite's write lock (the caller's
BEGIN IMMEDIATE), PostgreSQL's transaction-scoped advisory lock. Times never go backwards: an
entry's time is at least its predecessor's, whatever the writer's clock says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
    text,
)

from store.db.models import UTCDateTime

Outcome = Literal["allowed", "denied"]
GENESIS_HASH = "0" * 64
DETAIL_MAX_CHARS = 200
# Shared by every incidex process on a PostgreSQL store (the migration lock uses another).
PG_CHAIN_LOCK_KEY = 0x1C1DA7

audit_metadata = MetaData()
audit_events = Table(
    "audit_events",
    audit_metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("incident_id", String(256)),
    Column("analysis_id", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("detail", String(DETAIL_MAX_CHARS), nullable=False, default=""),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_actor", "actor", "seq"),
    Index("ix_audit_events_incident", "incident_id", "seq"),
)


@dataclass(frozen=True)
class AuditEntry:
    """One audit event as stored: who did what to which record, when, and whether it was allowed."""

    seq: int
    at: datetime
    actor: str
    action: str
    incident_id: str | None
    analysis_id: str | None
    outcome: str
    detail: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready values (time in ISO 8601 UTC)."""
        values = dict(self.__dict__)
        values["at"] = self.at.isoformat()
        return values


@dataclass(frozen=True)
class AuditEvent:
    """An event to append: the chain adds its seq, time and hashes."""

    actor: str
    action: str
    incident_id: str | None = None
    analysis_id: str | None = None
    outcome: Outcome = "allowed"
    detail: str = ""


def entry_hash(key: bytes, seq: int, at: datetime, event: AuditEvent | AuditEntry,
               prev_hash: str) -> str:
    """The HMAC of an entry's fields and its predecessor's hash (hex)."""
    fields = [seq, at.astimezone(UTC).isoformat(timespec="microseconds"), event.actor,
              event.action, event.incident_id, event.analysis_id, event.outcome, event.detail,
              prev_hash]
    message = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def append(connection: Connection, key: bytes, event: AuditEvent,
           now: datetime | None = None) -> AuditEntry:
    """Append one event at the chain head, inside the caller's write transaction.

    On SQLite the transaction must have begun IMMEDIATE (a Store write transaction does), which
    already holds the database's only write lock; on PostgreSQL this takes the chain lock until
    the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_CHAIN_LOCK_KEY})
    head = connection.execute(
        select(audit_events.c.seq, audit_events.c.hash, audit_events.c.at)
        .order_by(audit_events.c.seq.desc()).limit(1)).first()
    seq, prev_hash = (1, GENESIS_HASH) if head is None else (head.seq + 1, head.hash)
    at = now or datetime.now(UTC)
    if head is not None and at < head.at:
        at = head.at
    clean = AuditEvent(event.actor[:128], event.action[:64], event.incident_id,
                       event.analysis_id, event.outcome, _short(event.detail))
    digest = entry_hash(key, seq, at, clean, prev_hash)
    connection.execute(audit_events.insert().values(
        seq=seq, at=at, actor=clean.actor, action=clean.action, incident_id=clean.incident_id,
        analysis_id=clean.analysis_id, outcome=clean.outcome, detail=clean.detail,
        prev_hash=prev_hash, hash=digest))
    return AuditEntry(seq, at, clean.actor, clean.action, clean.incident_id, clean.analysis_id,
                      clean.outcome, clean.detail, prev_hash, digest)


def head(connection: Connection) -> tuple[int, str] | None:
    """The last entry's (seq, hash), None for an empty log."""
    row = connection.execute(select(audit_events.c.seq, audit_events.c.hash)
                             .order_by(audit_events.c.seq.desc()).limit(1)).first()
    return None if row is None else (int(row.seq), str(row.hash))


def entry_from_row(row: Any) -> AuditEntry:
    """An AuditEntry from a selected audit_events row."""
    return AuditEntry(int(row.seq), row.at, row.actor, row.action, row.incident_id,
                      row.analysis_id, row.outcome, row.detail, row.prev_hash, row.hash)


def _short(detail: str) -> str:
    """The detail on one line, cut to the column's length."""
    line = " ".join(detail.split())
    return line if len(line) <= DETAIL_MAX_CHARS else line[:DETAIL_MAX_CHARS - 1] + "…"
