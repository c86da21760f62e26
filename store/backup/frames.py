"""Stored files of a snapshot: zstandard-compressed chunks, each passed through the codec.

Invariants: a frame file is a magic line, then frames of a 4-byte length and codec bytes;
each frame decodes and decompresses on its own, so a file of any size streams in fixed memory;
a file that ends mid-frame is reported as truncated, never read as shorter data.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from store.backup.codec import Codec
from store.fileio import PRIVATE_FILE_MODE

MAGIC = b"INCIDEX-FRAMES-1\n"
CHUNK_BYTES = 4 << 20
ZSTD_LEVEL = 3
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class FrameDigest:
    """Checksums and sizes of a file written as frames: of the stored bytes and of the plain."""

    sha256: str
    size: int
    plain_sha256: str
    plain_size: int


def write_frames(source: Path, target: Path, codec: Codec) -> FrameDigest:
    """Compress and encode source into target (created 0600), fsynced; their checksums."""
    import os

    import zstandard

    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    stored, plain = hashlib.sha256(), hashlib.sha256()
    stored_size = plain_size = 0
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with open(descriptor, "wb") as out, open(source, "rb") as handle:
        out.write(MAGIC)
        stored.update(MAGIC)
        stored_size += len(MAGIC)
        while chunk := handle.read(CHUNK_BYTES):
            plain.update(chunk)
            plain_size += len(chunk)
            payload = codec.encode(compressor.compress(chunk))
            frame = _LENGTH.pack(len(payload)) + payload
            out.write(frame)
            stored.update(frame)
            stored_size += len(frame)
        out.flush()
        os.fsync(out.fileno())
    return FrameDigest(stored.hexdigest(), stored_size, plain.hexdigest(), plain_size)


def read_frames(path: Path, codec: Codec) -> Iterator[bytes]:
    """The plain chunks of a frame file; ValueError naming the fault when it is damaged."""
    import zstandard

    decompressor = zstandard.ZstdDecompressor()
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path.name}: not a snapshot frame file")
        number = 0
        while header := handle.read(_LENGTH.size):
            number += 1
            payload = _read_exactly(handle, header, path, number)
            try:
                yield decompressor.decompress(codec.decode(payload))
            except zstandard.ZstdError as error:
                raise ValueError(f"{path.name}: frame {number} does not decompress ({error})"
                                 ) from None


def _read_exactly(handle: BinaryIO, header: bytes, path: Path, number: int) -> bytes:
    if len(header) != _LENGTH.size:
        raise ValueError(f"{path.name}: truncated in the header of frame {number}")
    (length,) = _LENGTH.unpack(header)
    payload = handle.read(length)
    if len(payload) != length:
        raise ValueError(f"{path.name}: truncated in frame {number} "
                         f"({len(payload)} of {length} bytes)")
    return payload


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def unpack_frames(source: Path, target: Path, codec: Codec) -> str:
    """Write the plain bytes of a frame file to target (0600); their sha256."""
    import os

    digest = hashlib.sha256()
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with open(descriptor, "wb") as out:
        for chunk in read_frames(source, codec):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()
