"""The store's cipher: seals a batch of records with their incidents' data keys, opens values
with a cache of unwrapped keys, and hands a per-incident codec to backups.

Speed: a batch looks up (or creates) the data keys of its incidents in one key-database query,
so sealing costs an AES-GCM call per value, never a database read per record.
"""

from __future__ import annotations

import base64
import hmac
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.crypto.blind_index import BlindIndex, index_key_fingerprint
from store.crypto.datakeys import DataKeyStore, WrappedKey
from store.crypto.envelope import KeyUnavailable, binding, open_value, read_header, seal_value
from store.crypto.keyring import Keyring
from store.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from store.ingest.records import PreparedSave
    from store.settings import Settings

TEXT_PREFIX = "ix1:"
MAX_OPEN_KEYS = 20_000
_attached: weakref.WeakKeyDictionary[Any, StoreCipher] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """The stored form of one record's sensitive text, and the tokens that index it."""

    key_id: str
    description: str
    initial_findings: str
    analysis_json: str
    search_terms: str


def is_sealed(stored: str) -> bool:
    """Whether a stored column value is sealed (else it is clear text from before encryption)."""
    return stored.startswith(TEXT_PREFIX)


class IncidentCodec:
    """Seal and open bytes under one incident's data key (backup files, backup journals).

    `aad` binds a blob to where it belongs (say b"journal/2026-11-28/an-..."): opened with any
    other aad it fails. Once the incident is purged its key is gone and no blob opens."""

    def __init__(self, cipher: StoreCipher, incident_id: str,
                 write_key: tuple[bytes, AESGCM] | None = None) -> None:
        self._cipher = cipher
        self.incident_id = incident_id
        self._write_key = write_key

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt plaintext bound to aad."""
        if self._write_key is None:
            self._write_key = self._cipher.write_keys([self.incident_id])[self.incident_id]
        key_id, aead = self._write_key
        return seal_value(aead, key_id, plaintext, aad)

    def open_sealed(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob sealed with the same aad; KeyUnavailable naming the key otherwise."""
        where = f"incident {self.incident_id}"
        header = read_header(blob, where)
        return open_value(self._cipher.read_key(header.key_id, where), blob, aad, where)


class StoreCipher:
    """Keys and sealing for one store; the key database opens on first use."""

    def __init__(self, keyring: Keyring, datakeys_path: Path, *, sealing: bool,
                 index_recorded: str | None = None) -> None:
        self.keyring = keyring
        self.datakeys_path = datakeys_path
        self.sealing = sealing
        # The fingerprint of the blind-index key the store recorded (None: none yet).
        self._index_recorded = index_recorded
        self._datakeys: DataKeyStore | None = None
        self._index: BlindIndex | None = None
        self._open_keys: dict[str, AESGCM] = {}
        self._lock = threading.Lock()

    @property
    def datakeys(self) -> DataKeyStore:
        """The key database of this store."""
        with self._lock:
            if self._datakeys is None:
                if self.sealing:
                    self.keyring.ensure()
                self._datakeys = DataKeyStore(self.datakeys_path, self.keyring)
            return self._datakeys

    @property
    def index(self) -> BlindIndex:
        """The blind index (and content-hash) key."""
        with self._lock:
            if self._index is None:
                self._index = BlindIndex(self._checked_index_key())
            return self._index

    def _checked_index_key(self) -> bytes:
        """The blind-index key, refused when it is not the one the store's search terms and
        content hashes were made with; never made anew for a store that recorded one."""
        path = self.keyring.index_key_path
        recorded = self._index_recorded
        key = self.keyring.index_key(create=recorded is None)
        if key is None:
            raise KeyUnavailable(
                f"{path}: the blind-index key is missing, and this store's search terms and "
                f"content hashes were made with one (fingerprint {recorded}): restore the "
                "keyring folder from your key backup (a new key would silently match none of "
                "them)")
        fingerprint = index_key_fingerprint(key)
        if recorded is not None and not hmac.compare_digest(recorded, fingerprint):
            raise KeyUnavailable(
                f"{path}: this blind-index key (fingerprint {fingerprint}) is not the one this "
                f"store's search terms and content hashes were made with (fingerprint "
                f"{recorded}): restore that key from your key backup")
        return key

    def close(self) -> None:
        """Release the key database."""
        if self._datakeys is not None:
            self._datakeys.close()

    # Writing ------------------------------------------------------------------------------

    def write_keys(self, incident_ids: Sequence[str]) -> dict[str, tuple[bytes, AESGCM]]:
        """The active data key of each incident (created when missing): one lookup for all."""
        wrapped = self.datakeys.active_keys(incident_ids, create=True)
        keys = {}
        for incident_id in incident_ids:
            item = wrapped[incident_id]
            keys[incident_id] = (item.key_id, self._unwrapped(item))
        return keys

    def _unwrapped(self, item: WrappedKey) -> AESGCM:
        """A data key ready to use, unwrapped once per process (the lookup of which key is
        active still happens per batch: a rotation elsewhere shows at the next one)."""
        key_id = item.key_id.hex()
        with self._lock:
            cached = self._open_keys.get(key_id)
        if cached is not None:
            return cached
        aead = self._aead_of(item)
        with self._lock:
            if len(self._open_keys) >= MAX_OPEN_KEYS:
                self._open_keys.clear()
            self._open_keys[key_id] = aead
        return aead

    def seal_batch(self, batch: Sequence[PreparedSave]) -> None:
        """Give every prepared record its sealed text and search tokens."""
        keys = self.write_keys([p.incident_id for p in batch])
        index = self.index
        for prepared in batch:
            key_id, aead = keys[prepared.incident_id]
            incident = prepared.record.incident
            prepared.sealed = SealedRecord(
                key_id=key_id.hex(),
                description=self._seal_text(aead, key_id, "incidents", "description",
                                            incident.incident_id, incident.description),
                initial_findings=self._seal_text(aead, key_id, "incidents", "initial_findings",
                                                 incident.incident_id, incident.initial_findings),
                analysis_json=self._seal_text(aead, key_id, "analyses", "analysis_json",
                                              prepared.analysis_id, prepared.analysis_json),
                search_terms=index.tokens((incident.description, incident.initial_findings,
                                           prepared.analysis_json)),
            )

    def seal_field(self, key: tuple[bytes, AESGCM], table: str, column: str, row: str,
                   plaintext: str) -> str:
        """One sealed text value (empty text stays empty: it holds nothing to hide)."""
        return self._seal_text(key[1], key[0], table, column, row, plaintext)

    @staticmethod
    def _seal_text(aead: AESGCM, key_id: bytes, table: str, column: str, row: str,
                   plaintext: str) -> str:
        if not plaintext:
            return ""
        blob = seal_value(aead, key_id, plaintext.encode("utf-8", "surrogatepass"),
                          binding(table, column, row))
        return TEXT_PREFIX + base64.b64encode(blob).decode("ascii")

    # Reading ------------------------------------------------------------------------------

    def open_text(self, table: str, column: str, row: str, stored: str) -> str:
        """The clear text of a sealed column value; KeyUnavailable naming the row and key."""
        if not stored:
            return ""
        where = f"{table}.{column} of {row}"
        if not stored.startswith(TEXT_PREFIX):
            raise KeyUnavailable(f"{where}: marked sealed but not a sealed value")
        try:
            blob = base64.b64decode(stored[len(TEXT_PREFIX):], validate=True)
        except ValueError:
            raise KeyUnavailable(f"{where}: sealed value damaged (not base64)") from None
        header = read_header(blob, where)
        aead = self.read_key(header.key_id, where)
        return open_value(aead, blob, binding(table, column, row), where).decode(
            "utf-8", "surrogatepass")

    def read_key(self, key_id_hex: str, where: str) -> AESGCM:
        """An unwrapped data key by id, cached; KeyUnavailable when the key database lacks it."""
        with self._lock:
            cached = self._open_keys.get(key_id_hex)
        if cached is not None:
            return cached
        found = self.datakeys.keys_by_id([bytes.fromhex(key_id_hex)])
        if not found:
            raise KeyUnavailable(f"{where}: data key {key_id_hex} is not in the key database "
                                 f"{self.datakeys_path} (purged, or a key database of "
                                 "another store)")
        return self._unwrapped(next(iter(found.values())))

    def forget_keys(self) -> None:
        """Drop every unwrapped key this process holds (after a purge or a rotation)."""
        with self._lock:
            self._open_keys.clear()

    def codec(self, incident_id: str) -> IncidentCodec:
        """Seal and open bytes (backups, journals) under this incident's data key."""
        return IncidentCodec(self, incident_id)

    def codecs(self, incident_ids: Sequence[str]) -> dict[str, IncidentCodec]:
        """Codecs of many incidents, their keys looked up at once (a batch of backups)."""
        keys = self.write_keys(list(dict.fromkeys(incident_ids)))
        return {incident_id: IncidentCodec(self, incident_id, key)
                for incident_id, key in keys.items()}

    def _aead_of(self, wrapped: WrappedKey) -> AESGCM:
        return AESGCM(self.datakeys.unwrap(wrapped))


def cipher_from_settings(settings: Settings, store_id: str, *,
                         index_recorded: str | None = None) -> StoreCipher:
    """The cipher of the store `store_id`: the keyring in SECRETS_DIR/keyring and its key
    database SECRETS_DIR/datakeys-<store id>.db; refused inside the data directory. With
    index_recorded, the blind-index key must have that fingerprint."""
    from store.locations import data_directory, secrets_directory

    directory = secrets_directory(settings)
    if directory.is_relative_to(data_directory(settings)):
        raise StoreError(f"{directory}: the secrets directory must be outside the data directory")
    environment = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    keyring = Keyring(directory / "keyring", settings.encryption_primary_key, environment)
    return StoreCipher(keyring, directory / f"datakeys-{store_id}.db",
                       sealing=settings.encrypt_at_rest, index_recorded=index_recorded)


def attach_cipher(engine: Engine, cipher: StoreCipher) -> None:
    """Make `cipher` the one reads and writes through this engine use."""
    _attached[engine] = cipher


def cipher_of(connection: Connection | Engine) -> StoreCipher | None:
    """The cipher attached to a connection's engine, None when none is."""
    engine = getattr(connection, "engine", connection)
    return _attached.get(engine)
