"""The store_info row: the store's identity, its write-sequence counter and its PII key record.

Invariants: store_id never changes once written (a recreated database gets a new one); every
embeddings.seq is taken from embedding_seq under that row's write lock, held until commit, so
sequence numbers become visible in increasing order on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from store.db.models import StoreInfo, table_of
from store.errors import StoreUnavailable


@dataclass(frozen=True, slots=True)
class StoreIdentity:
    """What store_info holds."""

    store_id: str
    embedding_seq: int
    pii_key_fingerprint: str | None
    pii_key_reindexing: str | None
    index_key_fingerprint: str | None = None


def store_identity(connection: Connection) -> StoreIdentity:
    """The store's identity row; StoreUnavailable when the schema predates it."""
    info = table_of(StoreInfo).c
    row = connection.execute(
        select(info.store_id, info.embedding_seq, info.pii_key_fingerprint,
               info.pii_key_reindexing, info.index_key_fingerprint).where(info.id == 1)
    ).first()
    if row is None:
        raise StoreUnavailable("the store has no identity row (store_info): is it upgraded?")
    return StoreIdentity(row.store_id, int(row.embedding_seq), row.pii_key_fingerprint,
                         row.pii_key_reindexing, row.index_key_fingerprint)


def allocate_seqs(connection: Connection, count: int) -> int:
    """Reserve `count` write sequence numbers in this transaction; returns the first.

    The UPDATE locks the one row until the transaction ends, so a second writer waits here
    and its numbers are both larger and committed later.
    """
    info = table_of(StoreInfo).c
    last = connection.execute(
        update(table_of(StoreInfo)).where(info.id == 1)
        .values(embedding_seq=info.embedding_seq + count)
        .returning(info.embedding_seq)
    ).scalar_one()
    return int(last) - count + 1


def set_pii_key(connection: Connection, fingerprint: str | None = None,
                reindexing: str | None = None, *, only_if_unset: bool = False) -> None:
    """Record the PII key's fingerprint and the one a running reindex moves to."""
    info = table_of(StoreInfo).c
    statement = update(table_of(StoreInfo)).where(info.id == 1).values(
        pii_key_fingerprint=fingerprint, pii_key_reindexing=reindexing)
    if only_if_unset:
        statement = statement.where(info.pii_key_fingerprint.is_(None))
    connection.execute(statement)


def record_index_key(connection: Connection, fingerprint: str) -> str:
    """Record the blind-index key's fingerprint unless one is recorded; the one recorded."""
    info = table_of(StoreInfo).c
    connection.execute(update(table_of(StoreInfo))
                       .where(info.id == 1, info.index_key_fingerprint.is_(None))
                       .values(index_key_fingerprint=fingerprint))
    return str(connection.execute(select(info.index_key_fingerprint)
                                  .where(info.id == 1)).scalar_one())
