"""The sealed value format: AES-256-GCM under a data key, with a header naming that key.

    byte 0      format version (1)
    bytes 1-16  the data key's id (16 random bytes)
    bytes 17-28 the nonce (12 random bytes, fresh for every value)
    the rest    ciphertext and the 16-byte GCM tag

The associated data is the header followed by the caller's binding (table, column, row), so a
value copied to another row, another column or under another key id fails to open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from store.errors import StoreError

FORMAT_VERSION = 1
KEY_ID_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES


class KeyUnavailable(StoreError):
    """A sealed value cannot be opened: its key is missing or wrong, or the value is damaged."""


@dataclass(frozen=True, slots=True)
class SealedHeader:
    """What a sealed value says about itself before it is opened."""

    version: int
    key_id: str
    nonce: bytes


def binding(table: str, column: str, row: str) -> bytes:
    """The associated data that ties a value to one table, column and row."""
    return f"{table}\x00{column}\x00{row}".encode("utf-8", "surrogatepass")


def seal_value(key: AESGCM, key_id: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt plaintext under a data key; the result carries version, key id and nonce."""
    header = bytes([FORMAT_VERSION]) + key_id + os.urandom(NONCE_BYTES)
    return header + key.encrypt(header[1 + KEY_ID_BYTES:], plaintext, header + aad)


def read_header(blob: bytes, where: str) -> SealedHeader:
    """The header of a sealed value; KeyUnavailable naming `where` if it is not one."""
    if len(blob) < HEADER_BYTES + TAG_BYTES:
        raise KeyUnavailable(f"{where}: sealed value truncated ({len(blob)} bytes)")
    if blob[0] != FORMAT_VERSION:
        raise KeyUnavailable(f"{where}: unknown sealed format version {blob[0]}")
    return SealedHeader(blob[0], blob[1:1 + KEY_ID_BYTES].hex(),
                        blob[1 + KEY_ID_BYTES:HEADER_BYTES])


def open_value(key: AESGCM, blob: bytes, aad: bytes, where: str) -> bytes:
    """Decrypt a sealed value; KeyUnavailable (naming `where` and the key id) when the key is
    wrong, the value was truncated or altered, or it belongs to another row."""
    header = read_header(blob, where)
    try:
        return key.decrypt(header.nonce, blob[HEADER_BYTES:], blob[:HEADER_BYTES] + aad)
    except InvalidTag:
        raise KeyUnavailable(
            f"{where}: does not decrypt with data key {header.key_id} (wrong key, a damaged or "
            "truncated value, or a value moved from another row)") from None
