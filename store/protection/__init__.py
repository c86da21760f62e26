"""Protection of stored incidents: key management over the rows (status, rotation, check,
encrypting a clear-text store in place) and purging (retention policy, forget).

Invariants: every step that rewrites rows commits in chunks and can be run again after a kill
(a row is either clear text or sealed whole, and readers open both); a purge removes every row,
vector, index entry, backup file and cache entry derived from an incident, deletes its data
keys last but surely, and leaves only a content-free tombstone.
"""

from __future__ import annotations

from store.protection.keys import (
    CheckReport,
    KeyInfo,
    KeysStatus,
    check_keys,
    encrypt_store,
    keys_status,
    reencrypt_rows,
    retire_key,
    rotate_keys,
)
from store.protection.purge import (
    PurgeCandidate,
    PurgeReport,
    forget_incidents,
    retention_candidates,
)
from store.protection.tombstones import Tombstone, last_tombstone, tombstones_of

__all__ = [
    "CheckReport",
    "KeyInfo",
    "KeysStatus",
    "PurgeCandidate",
    "PurgeReport",
    "Tombstone",
    "check_keys",
    "encrypt_store",
    "forget_incidents",
    "keys_status",
    "last_tombstone",
    "reencrypt_rows",
    "retention_candidates",
    "retire_key",
    "rotate_keys",
    "tombstones_of",
]
