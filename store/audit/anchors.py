"""Signed anchors: the chain head (seq, hash) signed with Ed25519, kept outside the database.

An anchor proves that the log once reached `seq` with that hash: someone who deletes the last
entries (and could recompute no HMAC link for lack of the key) is caught, because the anchored
entry is gone. Anchors are appended, one JSON line each, to a file per store in the secrets
directory; each line is written with one append so that concurrent processes never interleave.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from store.fileio import PRIVATE_FILE_MODE, private_directory

ANCHOR_VERSION = 1


@dataclass(frozen=True)
class Anchor:
    """A signed chain head as read back from the anchor file (line: its line number)."""

    line: int
    store_id: str
    seq: int
    hash: str
    at: str
    signature: str


def signed_message(store_id: str, seq: int, digest: str, at: str) -> bytes:
    """The bytes an anchor's signature covers."""
    return json.dumps([ANCHOR_VERSION, store_id, seq, digest, at],
                      separators=(",", ":")).encode("utf-8")


def write_anchor(path: Path, key: Ed25519PrivateKey, store_id: str, seq: int,
                 digest: str) -> Anchor:
    """Sign the head (seq, digest) and append it to the anchor file (created owner-only)."""
    at = datetime.now(UTC).isoformat()
    signature = base64.b64encode(key.sign(signed_message(store_id, seq, digest, at))).decode()
    line = json.dumps({"v": ANCHOR_VERSION, "store_id": store_id, "seq": seq, "hash": digest,
                       "at": at, "signature": signature}, separators=(",", ":")) + "\n"
    private_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        os.write(descriptor, line.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return Anchor(0, store_id, seq, digest, at, signature)


def read_anchors(path: Path) -> list[Anchor | str]:
    """Every anchor in the file, in file order; a line that is not an anchor is its problem."""
    if not path.exists():
        return []
    found: list[Anchor | str] = []
    with path.open(encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            found.append(_parse(number, line))
    return found


def signature_valid(anchor: Anchor, key: Ed25519PublicKey) -> bool:
    """Whether the anchor was signed by key over exactly its store, seq, hash and time."""
    try:
        raw = base64.b64decode(anchor.signature, validate=True)
        key.verify(raw, signed_message(anchor.store_id, anchor.seq, anchor.hash, anchor.at))
    except (InvalidSignature, ValueError):
        return False
    return True


def _parse(number: int, line: str) -> Anchor | str:
    try:
        value = json.loads(line)
        return Anchor(number, str(value["store_id"]), int(value["seq"]), str(value["hash"]),
                      str(value["at"]), str(value["signature"]))
    except (ValueError, KeyError, TypeError):
        return f"anchor line {number}: not a signed anchor"
