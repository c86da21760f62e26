"""The keyring: key-encryption keys (KEKs) as files named by key id, and which one is primary.

    SECRETS_DIR/keyring/<key id>.key    32 random bytes in hex, mode 0600, folder 0700
    SECRETS_DIR/keyring/primary         the id of the KEK that wraps new data keys
    SECRETS_DIR/keyring/index.hmac      the blind-index and content-hash key (never rotated)
    SECRETS_DIR/keyring/retired/        KEKs that wrap nothing any more, kept until you drop them

INCIDEX_ENCRYPTION_PRIMARY_KEY names the primary instead of the file; INCIDEX_ENCRYPTION_KEY
("<key id>:<64 hex digits>") adds a KEK from the environment (containers), primary when no
other is named. The keyring refuses to live inside the data directory: a backup of the data
that carries its own keys protects nothing.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.crypto.envelope import KeyUnavailable
from store.errors import StoreError
from store.fileio import fsync_path, private_directory, write_private_file, write_temp

KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KEY_SUFFIX = ".key"
PRIMARY_FILE = "primary"
INDEX_KEY_FILE = "index.hmac"
RETIRED_FOLDER = "retired"


@dataclass(frozen=True)
class KeyEncryptionKey:
    """One KEK: its id, where it came from, and the AES-GCM object that wraps with it."""

    key_id: str
    source: str
    aead: AESGCM


class Keyring:
    """The KEKs of one secrets directory (plus one from the environment, if set)."""

    def __init__(self, directory: Path, primary_setting: str | None = None,
                 environment_key: str | None = None) -> None:
        self.directory = directory
        self._primary_setting = primary_setting
        self._environment = _parse_environment_key(environment_key) if environment_key else None
        self._loaded: dict[str, KeyEncryptionKey] = {}

    def ensure(self) -> None:
        """Create the keyring folder and a first primary KEK when there is none."""
        private_directory(self.directory)
        if self.primary_id() is None:
            self.set_primary(self.create_key())

    def key_ids(self) -> list[str]:
        """Every KEK id the keyring holds (files and the environment), sorted."""
        found = {path.name[:-len(KEY_SUFFIX)] for path in self._key_files()}
        if self._environment is not None:
            found.add(self._environment.key_id)
        return sorted(found)

    def primary_id(self) -> str | None:
        """The id of the KEK that wraps new data keys (read fresh: a rotation in another
        process takes effect at this process's next batch)."""
        if self._primary_setting:
            return self._primary_setting
        try:
            named = (self.directory / PRIMARY_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            named = ""
        if named:
            return named
        return self._environment.key_id if self._environment is not None else None

    def primary(self) -> KeyEncryptionKey:
        """The primary KEK; KeyUnavailable when none is set or its file is missing."""
        key_id = self.primary_id()
        if key_id is None:
            raise KeyUnavailable(f"{self.directory}: no primary key-encryption key "
                                 "(run `incidex keys status`)")
        return self.key(key_id)

    def key(self, key_id: str) -> KeyEncryptionKey:
        """The KEK with this id; KeyUnavailable naming it when the keyring lacks it."""
        cached = self._loaded.get(key_id)
        if cached is not None:
            return cached
        if self._environment is not None and key_id == self._environment.key_id:
            loaded = self._environment
        else:
            loaded = self._read_file(key_id)
        self._loaded[key_id] = loaded
        return loaded

    def create_key(self) -> str:
        """Write a new random KEK file; its id (date and random suffix)."""
        key_id = f"kek-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
        write_private_file(self.directory / f"{key_id}{KEY_SUFFIX}",
                           (secrets.token_hex(32) + "\n").encode())
        return key_id

    def set_primary(self, key_id: str) -> None:
        """Make key_id the KEK that wraps new data keys (the `primary` file)."""
        self.key(key_id)
        write_private_file(self.directory / PRIMARY_FILE, (key_id + "\n").encode())

    def retire(self, key_id: str) -> Path:
        """Move a KEK file into retired/ (the caller checked that it wraps nothing)."""
        if key_id == self.primary_id():
            raise StoreError(f"key {key_id}: the primary key cannot be retired (rotate first)")
        source = self._file_of(key_id)
        if not source.exists():
            raise StoreError(f"key {key_id}: no such key file in {self.directory}")
        target = private_directory(self.directory / RETIRED_FOLDER) / source.name
        os.replace(source, target)
        self._loaded.pop(key_id, None)
        return target

    @property
    def index_key_path(self) -> Path:
        """Where the blind-index key lives."""
        return self.directory / INDEX_KEY_FILE

    def index_key(self, *, create: bool = True) -> bytes | None:
        """The key of the blind index and content hashes, created on first use (None when it
        is missing and create is False)."""
        path = self.index_key_path
        if not path.exists():
            if not create:
                return None
            private_directory(self.directory)
            _create_exclusively(path, (secrets.token_hex(32) + "\n").encode())
        return bytes.fromhex(_read_private(path, "blind-index key"))

    def _key_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [path for path in self.directory.iterdir()
                if path.name.endswith(KEY_SUFFIX) and path.is_file()]

    def _file_of(self, key_id: str) -> Path:
        if not KEY_ID_PATTERN.match(key_id):
            raise KeyUnavailable(f"key {key_id!r}: not a key id (letters, digits, '-', '_')")
        return self.directory / f"{key_id}{KEY_SUFFIX}"

    def _read_file(self, key_id: str) -> KeyEncryptionKey:
        path = self._file_of(key_id)
        if not path.exists():
            raise KeyUnavailable(f"key {key_id}: missing from the keyring {self.directory} "
                                 "(restore it from your key backup)")
        material = _read_private(path, f"key {key_id}")
        try:
            raw = bytes.fromhex(material)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise KeyUnavailable(f"key {key_id}: {path} does not hold 64 hex digits")
        return KeyEncryptionKey(key_id, str(path), AESGCM(raw))


def _read_private(path: Path, what: str) -> str:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeyUnavailable(f"{what}: {path} is readable by others; run chmod 600 on it")
    return path.read_text(encoding="utf-8").strip()


def _create_exclusively(path: Path, payload: bytes) -> None:
    """Write a new 0600 file whole, never replacing one another process wrote first (a link,
    unlike a rename, fails when the name exists)."""
    temp = write_temp(path, payload)
    try:
        fsync_path(temp)
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)


def _parse_environment_key(value: str) -> KeyEncryptionKey:
    key_id, _colon, material = value.strip().partition(":")
    try:
        raw = bytes.fromhex(material)
    except ValueError:
        raw = b""
    if not KEY_ID_PATTERN.match(key_id) or len(raw) != 32:
        raise StoreError("INCIDEX_ENCRYPTION_KEY: expected '<key id>:<64 hex digits>'")
    return KeyEncryptionKey(key_id, "INCIDEX_ENCRYPTION_KEY", AESGCM(raw))
