"""The seams where backups are encrypted.

A store-wide Codec passes snapshot frames (and journal bodies when the store does not seal);
a BodySealer seals each journal body with its own incident's data key, so that forgetting an
incident (deleting its key) makes its journal lines unreadable and leaves the others readable.

Invariants: decode(encode(data)) == data; open_body(seal_bodies(x)) == x for the same
analysis id; a codec's name is written beside what it encoded, so a reader knows which codec
(and which keys) it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from store.errors import BodyForgotten

# The codec name of a journal body sealed with its incident's data key.
SEALED_BODY = "incident-key"
__all__ = ["SEALED_BODY", "BodyForgotten", "BodySealer", "Codec", "PlainCodec", "codec_named"]


class BodySealer(Protocol):
    """Seals and opens journal bodies under their incidents' data keys, bound to the analysis."""

    @property
    def sealing(self) -> bool:
        """Whether new bodies are sealed (the store encrypts at rest)."""
        ...

    def seal_bodies(self, bodies: Sequence[tuple[str, str, bytes]]) -> list[tuple[str, bytes]]:
        """(key id, sealed bytes) of each (incident id, analysis id, plain bytes)."""
        ...

    def open_body(self, incident_id: str, analysis_id: str, sealed: bytes) -> bytes:
        """The plain bytes; BodyForgotten when the key was deleted, ValueError naming the key
        id when it cannot be opened otherwise (another keyring, altered bytes)."""
        ...


class Codec(Protocol):
    """Turns plain bytes into stored bytes and back (the encryption issue supplies a real one)."""

    name: str

    def encode(self, data: bytes) -> bytes:
        """Stored form of data."""
        ...

    def decode(self, data: bytes) -> bytes:
        """Plain form of stored data; ValueError when it cannot be read."""
        ...

    def key_ids(self) -> list[str]:
        """The ids of the keys this codec encodes with (recorded in snapshot manifests)."""
        ...


class PlainCodec:
    """The identity codec: backups stay readable JSON and zstandard frames."""

    name = "plain"

    def encode(self, data: bytes) -> bytes:
        """The data as it is."""
        return data

    def decode(self, data: bytes) -> bytes:
        """The data as it is."""
        return data

    def key_ids(self) -> list[str]:
        """No keys."""
        return []


def codec_named(name: str, codec: Codec) -> Codec:
    """The codec that reads what was written under `name`; ValueError if it is not at hand."""
    if name == codec.name:
        return codec
    if name == PlainCodec.name:
        return PlainCodec()
    raise ValueError(f"written with codec {name!r}, but only {codec.name!r} is configured")
