"""The key database: each incident's data keys, wrapped by a KEK, in SQLite under the secrets
directory.

Why a separate database and not a table of the store: a data key that sits in the store is
restored with every backup of the store, and deleting it would shred nothing. Here, a purge
deletes the incident's data keys, and its text in every older backup of the store (or backup
journal) stays sealed for good. Back this file up with the keyring, apart from the data.

An incident has one active data key (new values are sealed with it) and may have retired ones
(replaced by `keys rotate --reencrypt`) that are kept while any row still uses them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag

from store.crypto.envelope import KEY_ID_BYTES, KeyUnavailable
from store.crypto.keyring import Keyring
from store.fileio import private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    key_id      BLOB PRIMARY KEY,
    incident_id TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ux_data_keys_active ON data_keys(incident_id)
    WHERE retired_at IS NULL;
CREATE INDEX IF NOT EXISTS ix_data_keys_incident ON data_keys(incident_id);
CREATE INDEX IF NOT EXISTS ix_data_keys_kek ON data_keys(kek_id);
"""
CHUNK = 500


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as the key database holds it."""

    key_id: bytes
    incident_id: str
    kek_id: str
    wrapped: bytes


class DataKeyStore:
    """Data keys by incident and by id; every method is one short transaction."""

    def __init__(self, path: Path, keyring: Keyring) -> None:
        self.path = path
        self.keyring = keyring
        self._lock = threading.Lock()
        private_file(path)
        self._connection = sqlite3.connect(path, timeout=30.0, check_same_thread=False,
                                           isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute("PRAGMA secure_delete=ON")
        self._connection.executescript(SCHEMA)

    def close(self) -> None:
        """Release the database file."""
        with self._lock:
            self._connection.close()

    def active_keys(self, incident_ids: Iterable[str], create: bool) -> dict[str, WrappedKey]:
        """The active data key of each incident, creating the missing ones when asked (in one
        transaction; a key another process created first wins)."""
        wanted = list(dict.fromkeys(incident_ids))
        found = self._select("incident_id", wanted, active_only=True)
        missing = [incident_id for incident_id in wanted if incident_id not in found]
        if missing and create:
            self._insert_new(missing)
            found.update(self._select("incident_id", missing, active_only=True))
        return found

    def keys_by_id(self, key_ids: Iterable[bytes]) -> dict[bytes, WrappedKey]:
        """Data keys (active or retired) by id; absent ids are left out."""
        found = self._select("key_id", list(dict.fromkeys(key_ids)), active_only=False)
        return {wrapped.key_id: wrapped for wrapped in found.values()}

    def replace_active(self, incident_ids: Sequence[str]) -> None:
        """Retire each incident's active data key and give it a new one (reencryption)."""
        now = _now()
        with self._lock, self._transaction():
            for start in range(0, len(incident_ids), CHUNK):
                chunk = list(incident_ids[start:start + CHUNK])
                marks = ",".join("?" * len(chunk))
                self._connection.execute(
                    f"UPDATE data_keys SET retired_at = ? WHERE retired_at IS NULL "
                    f"AND incident_id IN ({marks})", [now, *chunk])
            self._insert_rows(incident_ids)

    def retired_key_ids(self, incident_ids: Sequence[str]) -> dict[str, list[bytes]]:
        """The retired data keys of these incidents."""
        found: dict[str, list[bytes]] = {}
        for start in range(0, len(incident_ids), CHUNK):
            chunk = list(incident_ids[start:start + CHUNK])
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._connection.execute(
                    f"SELECT incident_id, key_id FROM data_keys WHERE retired_at IS NOT NULL "
                    f"AND incident_id IN ({marks})", chunk).fetchall()
            for incident_id, key_id in rows:
                found.setdefault(incident_id, []).append(bytes(key_id))
        return found

    def delete_keys(self, key_ids: Sequence[bytes]) -> int:
        """Delete data keys by id; how many."""
        return self._delete("key_id", list(key_ids))

    def delete_incidents(self, incident_ids: Sequence[str]) -> int:
        """Delete every data key of these incidents (crypto-shredding); how many."""
        return self._delete("incident_id", list(incident_ids))

    def rewrap_all(self, progress: object = None) -> int:
        """Wrap every data key not under the primary KEK with the primary; how many."""
        primary = self.keyring.primary()
        done = 0
        while True:
            with self._lock:
                rows = self._connection.execute(
                    "SELECT key_id, incident_id, kek_id, wrapped FROM data_keys "
                    "WHERE kek_id != ? LIMIT ?", (primary.key_id, CHUNK)).fetchall()
            if not rows:
                return done
            updates = []
            for key_id, incident_id, kek_id, wrapped in rows:
                raw = self.unwrap(WrappedKey(bytes(key_id), incident_id, kek_id, bytes(wrapped)))
                updates.append((primary.key_id, _wrap(self.keyring, primary.key_id, raw,
                                                      bytes(key_id)), bytes(key_id)))
            with self._lock, self._transaction():
                self._connection.executemany(
                    "UPDATE data_keys SET kek_id = ?, wrapped = ? WHERE key_id = ?", updates)
            done += len(updates)

    def counts_by_kek(self) -> dict[str, int]:
        """How many data keys each KEK wraps."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT kek_id, count(*) FROM data_keys GROUP BY kek_id").fetchall()
        return {kek_id: count for kek_id, count in rows}

    def kek_of_keys(self) -> dict[bytes, str]:
        """Every data key id with the KEK that wraps it."""
        with self._lock:
            rows = self._connection.execute("SELECT key_id, kek_id FROM data_keys").fetchall()
        return {bytes(key_id): kek_id for key_id, kek_id in rows}

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """The raw data key; KeyUnavailable naming the KEK when it is missing or wrong."""
        kek = self.keyring.key(wrapped.kek_id)
        nonce, sealed = wrapped.wrapped[:12], wrapped.wrapped[12:]
        try:
            return kek.aead.decrypt(nonce, sealed, _wrap_binding(wrapped.key_id))
        except InvalidTag:
            raise KeyUnavailable(
                f"key {wrapped.kek_id}: does not unwrap data key {wrapped.key_id.hex()} "
                "(a different key file under the same id?)") from None

    def _select(self, column: str, values: list, active_only: bool) -> dict:
        found: dict = {}
        active = " AND retired_at IS NULL" if active_only else ""
        for start in range(0, len(values), CHUNK):
            chunk = values[start:start + CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._connection.execute(
                    f"SELECT key_id, incident_id, kek_id, wrapped FROM data_keys "
                    f"WHERE {column} IN ({marks}){active}", chunk).fetchall()
            for key_id, incident_id, kek_id, wrapped in rows:
                item = WrappedKey(bytes(key_id), incident_id, kek_id, bytes(wrapped))
                found[incident_id if column == "incident_id" else item.key_id] = item
        return found

    def _insert_new(self, incident_ids: Sequence[str]) -> None:
        with self._lock, self._transaction():
            self._insert_rows(incident_ids, ignore_existing=True)

    def _insert_rows(self, incident_ids: Sequence[str], ignore_existing: bool = False) -> None:
        """Insert a new data key per incident (the caller holds the lock and a transaction)."""
        primary = self.keyring.primary()
        now = _now()
        rows = []
        for incident_id in incident_ids:
            key_id = os.urandom(KEY_ID_BYTES)
            raw = os.urandom(32)
            rows.append((key_id, incident_id, primary.key_id,
                         _wrap(self.keyring, primary.key_id, raw, key_id), now))
        verb = "INSERT OR IGNORE" if ignore_existing else "INSERT"
        self._connection.executemany(
            f"{verb} INTO data_keys (key_id, incident_id, kek_id, wrapped, created_at) "
            "VALUES (?, ?, ?, ?, ?)", rows)

    def _delete(self, column: str, values: list) -> int:
        removed = 0
        with self._lock:
            with self._transaction():
                for start in range(0, len(values), CHUNK):
                    chunk = values[start:start + CHUNK]
                    marks = ",".join("?" * len(chunk))
                    removed += self._connection.execute(
                        f"DELETE FROM data_keys WHERE {column} IN ({marks})", chunk).rowcount
            # Deleted keys must not linger in the WAL (secure_delete zeroes the pages).
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (the caller holds the lock); rolled back on any error."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")


def _wrap(keyring: Keyring, kek_id: str, raw: bytes, key_id: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + keyring.key(kek_id).aead.encrypt(nonce, raw, _wrap_binding(key_id))


def _wrap_binding(key_id: bytes) -> bytes:
    return b"incidex-data-key\x00" + key_id


def _now() -> str:
    return datetime.now(UTC).isoformat()
