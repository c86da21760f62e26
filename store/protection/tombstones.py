"""Reading the tombstones a purge wrote, for the audit log: hashed ids and counts, no text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from store.backup.journal import ForgetMark
from store.crypto import StoreCipher
from store.db.engine import read_connection
from store.db.models import PurgeTombstone, table_of


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What the audit log may say of one purged incident."""

    incident_hash: str
    analyses: int
    run_metadata: int
    embeddings: int
    backups: int


def last_tombstone(engine: Engine) -> int:
    """The id of the newest tombstone (0 for none): where a purge's new ones start."""
    with read_connection(engine) as connection:
        return int(connection.execute(select(func.max(table_of(PurgeTombstone).c.id)))
                   .scalar_one() or 0)


def tombstones_of(engine: Engine, cipher: StoreCipher, incident_ids: Iterable[str],
                  after: int) -> list[Tombstone]:
    """The tombstones written after id `after` for these incidents (found by the same keyed
    hash the purge wrote), oldest first."""
    stones = table_of(PurgeTombstone).c
    hashes = sorted({cipher.index.keyed_hash("tombstone", i) for i in incident_ids})
    found: list[Tombstone] = []
    with read_connection(engine) as connection:
        for start in range(0, len(hashes), 500):
            rows = connection.execute(
                select(stones.incident_hash, stones.analyses, stones.run_metadata,
                       stones.embeddings, stones.backups)
                .where(stones.id > after, stones.incident_hash.in_(hashes[start:start + 500]))
                .order_by(stones.id))
            found.extend(Tombstone(*row) for row in rows)
    return found


def tombstones_since(engine: Engine, since: datetime) -> list[ForgetMark]:
    """The tombstones written since a time, as the journal's forget lines carry them."""
    stones = table_of(PurgeTombstone).c
    with read_connection(engine) as connection:
        rows = connection.execute(select(stones.incident_hash, stones.purged_at, stones.reason)
                                  .where(stones.purged_at >= since).order_by(stones.id))
        return [ForgetMark(row.incident_hash, row.purged_at, row.reason) for row in rows]
