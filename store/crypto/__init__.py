"""Encryption at rest: envelope encryption of incident text, keyrings, data keys, blind index.

Invariants: every sealed value is AES-256-GCM under a data key of its own incident, bound by its
associated data to one table, column and row (moved elsewhere it fails to open); data keys are
stored only wrapped by a key-encryption key (KEK) of the keyring, in a key database under the
secrets directory, never beside the data, so deleting an incident's data key makes every copy of
its text unreadable, old backups included; no key, wrapped or not, is ever written under the
data directory; a value that cannot be opened raises KeyUnavailable naming the key id, never
returns garbage.
"""

from __future__ import annotations

from store.crypto.blind_index import BlindIndex, normalised_words
from store.crypto.cipher import (
    IncidentCodec,
    SealedRecord,
    StoreCipher,
    attach_cipher,
    cipher_from_settings,
    cipher_of,
    is_sealed,
)
from store.crypto.datakeys import DataKeyStore
from store.crypto.envelope import KeyUnavailable, SealedHeader, open_value, seal_value
from store.crypto.journal_bodies import JournalSealer
from store.crypto.keyring import Keyring

__all__ = [
    "BlindIndex",
    "DataKeyStore",
    "IncidentCodec",
    "JournalSealer",
    "KeyUnavailable",
    "Keyring",
    "SealedHeader",
    "SealedRecord",
    "StoreCipher",
    "attach_cipher",
    "cipher_from_settings",
    "cipher_of",
    "is_sealed",
    "normalised_words",
    "open_value",
    "seal_value",
]
