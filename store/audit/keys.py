"""The audit log's two keys: the HMAC key of the chain and the Ed25519 key of the anchors.

Both live in the secrets directory (outside the data directory, never in the database), each in
an owner-only file created on first use; a key file others can read is refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from store.errors import StoreError
from store.fileio import private_directory
from store.locations import data_directory, secrets_directory
from store.settings import Settings

CHAIN_KEY_FILE = "audit-chain.key"
SIGNING_KEY_FILE = "audit-signing.key"
KEY_BYTES = 32


def chain_key(settings: Settings) -> bytes:
    """The HMAC key that links each audit entry to the one before it."""
    return _key_bytes(_key_path(settings, CHAIN_KEY_FILE))


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The Ed25519 key that signs the anchored chain heads."""
    return Ed25519PrivateKey.from_private_bytes(_key_bytes(_key_path(settings,
                                                                     SIGNING_KEY_FILE)))


def verifying_key(settings: Settings) -> Ed25519PublicKey:
    """The public half of the signing key: what `audit verify` checks anchors with."""
    return signing_key(settings).public_key()


def _key_path(settings: Settings, name: str) -> Path:
    directory = secrets_directory(settings)
    if directory.is_relative_to(data_directory(settings)):
        raise StoreError(f"{directory}: the secrets directory must be outside the data directory")
    return directory / name


def _key_bytes(path: Path) -> bytes:
    """The key in path (hex), created at random when there is none yet."""
    if not path.exists():
        _create_key_file(path)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise StoreError(f"{path}: the audit key file is readable by others; run chmod 600 on it")
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise StoreError(f"{path}: not an audit key (64 hex digits expected)") from None
    if len(key) != KEY_BYTES:
        raise StoreError(f"{path}: not an audit key (64 hex digits expected)")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new random key atomically, never replacing a key another process wrote first."""
    private_directory(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")  # mode 0600
    try:
        with os.fdopen(handle, "w", encoding="ascii") as stream:
            stream.write(secrets.token_hex(KEY_BYTES) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # unlike rename, fails if a concurrent creator won
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
