"""The embedded on-disk tier: diskcache with a Disk that stores and reads bytes, never pickles."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW

from store.cache.backends import Found, RefusedValue
from store.fileio import PRIVATE_FILE_MODE, private_directory, private_file

REFUSED_KEY = "\x00refused-key"


class BytesOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that writes only bytes (and integer counters) and never unpickles.

    diskcache's default Disk pickles any other value and unpickles whatever row it reads,
    so a row planted by another user could run code; this one refuses such rows instead.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        """Keys must be text, stored raw."""
        if type(key) is not str:
            raise TypeError(f"cache keys are text, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        """Raw keys as stored; a pickled key (never written by incidex) is not unpickled."""
        if not raw:
            return REFUSED_KEY
        return bytes(key) if isinstance(key, memoryview) else key

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        """Bytes go in the database or a file; integers (counters) stay raw; nothing else."""
        if read or type(value) not in (bytes, int):
            raise TypeError(f"the disk cache stores bytes only, got {type(value).__name__}")
        return super().store(value, False, key=key)

    def _write(self, full_path: str, iterator: Any, mode: str,
               encoding: str | None = None) -> int:
        """Write a large value's file owner-only (diskcache's own writer follows the umask)."""
        if "b" not in mode:
            raise TypeError("the disk cache writes bytes only")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        for attempt in range(10):
            private_directory(Path(full_path).parent)
            try:
                descriptor = os.open(full_path, flags, PRIVATE_FILE_MODE)
                break
            except FileNotFoundError:  # another process culled the folder just now
                if attempt == 9:
                    raise
        with open(descriptor, "wb") as writer:
            size = 0
            for chunk in iterator:
                size += len(chunk)
                writer.write(chunk)
            return size

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        """Bytes or an integer counter; any other row (pickle, text) raises RefusedValue."""
        if mode == MODE_RAW and type(value) in (bytes, int):
            return value
        if mode == MODE_RAW and isinstance(value, memoryview):
            return bytes(value)
        if mode == MODE_BINARY and filename is not None and not read:
            return super().fetch(mode, filename, value, False)
        raise RefusedValue(f"cache entry stored in mode {mode} is not plain bytes; not read")


class DiskBackend:
    """diskcache under one directory per cache prefix; safe for several processes at once."""

    name = "disk"
    shares_counts = True
    outage_errors: tuple[type[BaseException], ...] = (diskcache.Timeout, sqlite3.Error, OSError)

    def __init__(
        self,
        directory: Path,
        size_limit_bytes: int = 1024**3,
        timeout_seconds: float = 1.0,
    ) -> None:
        self.directory = Path(directory)
        self.size_limit_bytes = size_limit_bytes
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._values: diskcache.Cache | None = None
        self._stats: diskcache.Cache | None = None

    def _open(self, part: str) -> diskcache.Cache:
        # diskcache would create its folder 0755 and its database under the umask.
        private_file(self.directory / part / "cache.db")
        return diskcache.Cache(
            str(self.directory / part),
            timeout=self.timeout_seconds,
            disk=BytesOnlyDisk,
            size_limit=self.size_limit_bytes,
            eviction_policy="least-recently-stored",
            tag_index=part == "values",
        )

    @property
    def values(self) -> diskcache.Cache:
        """The values cache, opened on first use so that a broken disk is an outage, not a crash."""
        with self._lock:
            if self._values is None:
                self._values = self._open("values")
            return self._values

    @property
    def stats(self) -> diskcache.Cache:
        """The shared counters, kept apart from values so that clear() leaves them."""
        with self._lock:
            if self._stats is None:
                self._stats = self._open("stats")
            return self._stats

    @staticmethod
    def _key(namespace: str, key: str) -> str:
        return f"{namespace}:{key}"

    def get(self, namespace: str, key: str) -> Found | None:
        """The value and its remaining lifetime; a refused entry is deleted, then reported."""
        disk_key = self._key(namespace, key)
        try:
            value, expire_time = self.values.get(disk_key, expire_time=True)
        except RefusedValue:
            self.values.delete(disk_key)
            raise
        if value is None:
            return None
        if type(value) is not bytes:
            self.values.delete(disk_key)
            raise RefusedValue(f"cache entry of type {type(value).__name__} is not bytes")
        remaining = None if expire_time is None else expire_time - time.time()
        return value, remaining

    def set(self, namespace: str, key: str, value: bytes, ttl_seconds: float | None) -> None:
        """Store value tagged with its namespace."""
        self.values.set(self._key(namespace, key), bytes(value), expire=ttl_seconds, tag=namespace)

    def delete(self, namespace: str, key: str) -> bool:
        """Remove one entry."""
        return bool(self.values.delete(self._key(namespace, key)))

    def clear(self, namespace: str | None) -> int:
        """Evict one namespace's tag, or every value (the counters stay)."""
        if namespace is None:
            return int(self.values.clear())
        return int(self.values.evict(namespace))

    def size(self) -> tuple[int | None, int | None]:
        """Entries and bytes on disk (database plus value files)."""
        return len(self.values), int(self.values.volume())

    def add_counts(self, deltas: Mapping[str, int]) -> None:
        """Add every delta in one transaction."""
        stats = self.stats
        with stats.transact():
            for field_name, amount in deltas.items():
                try:
                    stats.incr(field_name, amount)
                except TypeError:  # a row that is not an integer (not ours): replace it
                    stats.set(field_name, amount)

    def read_counts(self) -> dict[str, int] | None:
        """Every counter; rows that are not integers are skipped."""
        counts: dict[str, int] = {}
        stats = self.stats
        for field_name in list(stats.iterkeys()):
            if not isinstance(field_name, str) or field_name == REFUSED_KEY:
                continue
            try:
                value = stats.get(field_name)
            except RefusedValue:
                continue
            if type(value) is int:
                counts[field_name] = value
        return counts

    def reset_counts(self) -> None:
        """Remove every counter."""
        self.stats.clear()

    def close(self) -> None:
        """Close the SQLite connections (they reopen on next use)."""
        with self._lock:
            for part in (self._values, self._stats):
                if part is not None:
                    part.close()
