"""Checking the audit log: contiguous seqs, every HMAC link, signed anchors, monotonic times.

The first problem found is reported with the entry (or anchor line) it concerns; entries after
a broken one are not judged, since every later link depends on it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from store.audit.anchors import Anchor, read_anchors, signature_valid
from store.audit.chain import GENESIS_HASH, AuditEntry, audit_events, entry_from_row, entry_hash

BATCH_ROWS = 5_000


@dataclass
class ChainReport:
    """What `audit verify` found: how many entries and anchors it checked, and the first problem."""

    entries: int = 0
    anchors: int = 0
    head_seq: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the log and its anchors are intact."""
        return not self.problems


def verify_log(connection: Connection, key: bytes, anchor_file: Path, store_id: str,
               public_key: Ed25519PublicKey) -> ChainReport:
    """Check every entry in seq order, then every anchor against the entries it names."""
    report = ChainReport()
    hashes_at_anchors = _anchored_seqs(anchor_file)
    found_hashes: dict[int, str] = {}
    previous: AuditEntry | None = None
    for entry in _entries(connection):
        problem = _link_problem(entry, previous, key)
        if problem is not None:
            report.problems.append(problem)
            return report
        if entry.seq in hashes_at_anchors:
            found_hashes[entry.seq] = entry.hash
        previous = entry
        report.entries += 1
    report.head_seq = previous.seq if previous is not None else 0
    report.problems.extend(_anchor_problems(anchor_file, store_id, public_key, found_hashes,
                                            report))
    return report


def _entries(connection: Connection):  # type: ignore[no-untyped-def]
    """Every entry in seq order, read in batches (a long log never sits in memory whole)."""
    after = 0
    while True:
        rows = connection.execute(select(audit_events).where(audit_events.c.seq > after)
                                  .order_by(audit_events.c.seq).limit(BATCH_ROWS)).all()
        for row in rows:
            yield entry_from_row(row)
        if len(rows) < BATCH_ROWS:
            return
        after = rows[-1].seq


def _link_problem(entry: AuditEntry, previous: AuditEntry | None, key: bytes) -> str | None:
    expected_seq = 1 if previous is None else previous.seq + 1
    if entry.seq != expected_seq:
        return (f"entry {expected_seq}: missing (the next entry found is {entry.seq})"
                if entry.seq > expected_seq else f"entry {entry.seq}: out of sequence")
    expected_prev = GENESIS_HASH if previous is None else previous.hash
    if not hmac.compare_digest(entry.prev_hash, expected_prev):
        return f"entry {entry.seq}: does not link to entry {entry.seq - 1}"
    if not hmac.compare_digest(entry.hash, entry_hash(key, entry.seq, entry.at, entry,
                                                      entry.prev_hash)):
        return f"entry {entry.seq}: its hash does not match its content (edited)"
    if previous is not None and entry.at < previous.at:
        return f"entry {entry.seq}: its time is before entry {previous.seq}'s"
    if entry.outcome not in ("allowed", "denied"):
        return f"entry {entry.seq}: unknown outcome"
    return None


def _anchored_seqs(anchor_file: Path) -> set[int]:
    return {anchor.seq for anchor in read_anchors(anchor_file) if isinstance(anchor, Anchor)}


def _anchor_problems(anchor_file: Path, store_id: str, public_key: Ed25519PublicKey,
                     found_hashes: dict[int, str], report: ChainReport) -> list[str]:
    for anchor in read_anchors(anchor_file):
        if isinstance(anchor, str):
            return [anchor]
        where = f"anchor line {anchor.line} (entry {anchor.seq})"
        if anchor.store_id != store_id:
            return [f"{where}: signed for another store"]
        if not signature_valid(anchor, public_key):
            return [f"{where}: bad signature (forged or edited anchor)"]
        report.anchors += 1
        if anchor.seq > report.head_seq:
            return [f"entry {report.head_seq + 1}: missing (the log ends at entry "
                    f"{report.head_seq}, but {where} was signed)"]
        if not hmac.compare_digest(found_hashes.get(anchor.seq, ""), anchor.hash):
            return [f"entry {anchor.seq}: differs from its signed {where}"]
    return []
