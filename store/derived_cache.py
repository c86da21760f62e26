"""Per-user cache files of tables derived from installed packages (word frequencies, name lists).

Building such a table costs a noticeable part of a short process's start-up (importing the
package, parsing its data), yet it is the same for a given package version. So it is built once
and written here, keyed by what it came from.

Invariants: a cache file is read only when it belongs to this user and no one else may write it,
its header names the same format and source, and the SHA-256 of its payload matches; anything
else is treated as missing (and rebuilt by the caller). Files are written to a private temp
file, flushed and renamed (readers see no file or a whole one), 0600 in a 0700 folder. A folder
that cannot be written costs only the cache, never the caller's work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("incidex.cache")

_HEADER_LIMIT = 64 * 1024


def cache_root() -> Path:
    """Where per-user caches derived from installed packages live ($XDG_CACHE_HOME/incidex)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "incidex"


def cache_path(directory: Path, kind: str, fmt: str, source: str) -> Path:
    """The file of one table: readable, and distinct for each format and source."""
    digest = hashlib.sha256(f"{fmt}\0{source}".encode()).hexdigest()[:16]
    return directory / f"{kind}-{digest}.bin"


def pack(fmt: str, source: str, payload: bytes, extra: dict[str, Any] | None = None) -> bytes:
    """A cache file's contents: one JSON header line (with the payload's digest), the payload."""
    header = {"format": fmt, "source": source, "size": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest(), "extra": extra or {}}
    return json.dumps(header, sort_keys=True).encode("utf-8") + b"\n" + payload


def unpack(data: bytes, fmt: str, source: str) -> tuple[memoryview, dict[str, Any]] | None:
    """The payload and extra header fields of a cache file's contents, or None when they are
    of another format or source, or damaged."""
    end = data.find(b"\n", 0, _HEADER_LIMIT)
    if end < 0:
        return None
    try:
        header = json.loads(data[:end])
        if header["format"] != fmt or header["source"] != source:
            return None
        size, digest, extra = int(header["size"]), str(header["sha256"]), header["extra"]
    except (ValueError, TypeError, KeyError):
        return None
    payload = memoryview(data)[end + 1 :]
    if not isinstance(extra, dict) or len(payload) != size:
        return None
    if hashlib.sha256(payload).hexdigest() != digest:
        return None
    return payload, extra


def read_private(path: Path) -> bytes | None:
    """The file's bytes if it exists, is ours and no one else may write it; else None."""
    try:
        with path.open("rb") as stream:
            status = os.fstat(stream.fileno())
            if os.name == "posix" and (status.st_uid != os.geteuid() or status.st_mode & 0o022):
                log.info("cache file %s is not private to this user: rebuilt", path)
                return None
            return stream.read()
    except OSError:
        return None


def write_private(path: Path, contents: bytes) -> None:
    """Write the file whole (private temp file, flushed, renamed over the old); an OSError is
    logged and swallowed: the cache is an optimisation."""
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and directory.stat().st_mode & 0o077:
            directory.chmod(0o700)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mode 0600
    except OSError as error:
        log.info("cache file %s not written: %s", path, error.strerror or error)
        return
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(contents)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        log.info("cache file %s not written: %s", path, error.strerror or error)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
