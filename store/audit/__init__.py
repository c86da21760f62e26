"""The audit log: who did what to which incident or analysis, and whether it was allowed.

Invariants: the table is append-only (triggers refuse UPDATE and DELETE on SQLite and
PostgreSQL); each entry's hash is an HMAC, under a key kept in the secrets directory, over its
fields and its predecessor's hash; the head (seq, hash) is signed with Ed25519 into an anchor
file outside the database, so truncation is caught too; appends are serialised across
processes; details never hold incident text.
"""

from __future__ import annotations

from store.audit.anchors import Anchor
from store.audit.chain import AuditEntry, AuditEvent, Outcome
from store.audit.log import AuditLog
from store.audit.verify import ChainReport

__all__ = ["Anchor", "AuditEntry", "AuditEvent", "AuditLog", "ChainReport", "Outcome"]
