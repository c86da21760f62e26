"""The AuditLog: record events, read them back filtered, anchor the head, verify the whole log."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, select, text

from store.audit import keys
from store.audit.anchors import Anchor, write_anchor
from store.audit.chain import AuditEntry, AuditEvent, Outcome, append, audit_events, head
from store.audit.chain import entry_from_row as _entry
from store.audit.verify import ChainReport, verify_log
from store.db.engine import read_connection, run_write
from store.locations import secrets_directory
from store.settings import Settings

# A process anchors the head after this many of its own appends (and when the store closes).
ANCHOR_EVERY = 500


class AuditLog:
    """The store's append-only, HMAC-chained log of who did what, with signed anchors."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._key: bytes | None = None
        self._store_id: str | None = None
        self._unanchored = 0
        self._lock = threading.Lock()

    @property
    def key(self) -> bytes:
        """The chain's HMAC key (read from the secrets directory on first use)."""
        if self._key is None:
            self._key = keys.chain_key(self.settings)
        return self._key

    def record(self, actor: str, action: str, *, incident_id: str | None = None,
               analysis_id: str | None = None, outcome: Outcome = "allowed",
               detail: str = "") -> AuditEntry:
        """Append one event in its own transaction; anchors the head every ANCHOR_EVERY."""
        event = AuditEvent(actor, action, incident_id, analysis_id, outcome, detail)
        key = self.key
        entry = run_write(self.engine, lambda connection: append(connection, key, event))
        self._count_append()
        return entry

    def record_in(self, connection: Connection, event: AuditEvent) -> AuditEntry:
        """Append one event inside the caller's write transaction (it commits with the caller's
        work, or neither does); the caller's transaction holds the chain head until it ends."""
        entry = append(connection, self.key, event)
        self._count_append()
        return entry

    def _count_append(self) -> None:
        with self._lock:
            self._unanchored += 1
            due = self._unanchored >= ANCHOR_EVERY
        if due:
            self.anchor()

    def anchor(self) -> Anchor | None:
        """Sign the current head into the anchor file; None when the log is empty."""
        with read_connection(self.engine) as connection:
            current = head(connection)
        with self._lock:
            self._unanchored = 0
        if current is None:
            return None
        return write_anchor(self.anchor_file(), keys.signing_key(self.settings),
                            self.store_id(), *current)

    def anchor_if_written(self) -> None:
        """Anchor the head if this process appended since its last anchor (at close)."""
        if self._unanchored:
            self.anchor()

    def store_id(self) -> str:
        """The store's uuid (anchors name the store they belong to)."""
        if self._store_id is None:
            with read_connection(self.engine) as connection:
                self._store_id = str(connection.execute(
                    text("SELECT store_id FROM store_info WHERE id = 1")).scalar_one())
        return self._store_id

    def anchor_file(self) -> Path:
        """Where this store's anchors are kept: the secrets directory, outside the database."""
        return secrets_directory(self.settings) / "audit-anchors" / f"{self.store_id()}.jsonl"

    def entries(self, *, actor: str | None = None, incident_id: str | None = None,
                since: datetime | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Entries oldest first, filtered by actor, incident and time."""
        query = select(audit_events).order_by(audit_events.c.seq)
        if actor is not None:
            query = query.where(audit_events.c.actor == actor)
        if incident_id is not None:
            query = query.where(audit_events.c.incident_id == incident_id)
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        if limit is not None:
            query = query.limit(limit)
        with read_connection(self.engine) as connection:
            return [_entry(row) for row in connection.execute(query)]

    def verify(self) -> ChainReport:
        """Check every link, every anchor's signature and that anchored heads are present."""
        public_key = keys.verifying_key(self.settings)
        with read_connection(self.engine) as connection:
            return verify_log(connection, self.key, self.anchor_file(), self.store_id(),
                              public_key)
