"""The seam where backups are encrypted: every journal body and snapshot frame passes a codec.

Invariants: decode(encode(data)) == data; a codec's name is written beside what it encoded,
so a reader knows which codec (and, once encryption lands, which keys) it needs.
"""

from __future__ import annotations

from typing import Protocol


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
