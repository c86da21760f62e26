"""Cache tiers: bounded in-memory LRU, Redis, and an embedded on-disk cache (diskcache)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from store.cache.keys import check_name

Found = tuple[bytes, float | None]
"""A stored value and the seconds it has left to live (None: no expiry)."""


class RefusedValue(Exception):
    """A stored entry is not plain bytes (e.g. a pickle someone else wrote) and was not read."""


class Backend(Protocol):
    """One tier: plain bytes under (namespace, key), nothing else."""

    name: str
    outage_errors: tuple[type[BaseException], ...]
    shares_counts: bool

    def get(self, namespace: str, key: str) -> Found | None:
        """The value and its remaining lifetime, or None on a miss."""
        ...

    def set(self, namespace: str, key: str, value: bytes, ttl_seconds: float | None) -> None:
        """Store value, replacing any previous one."""
        ...

    def delete(self, namespace: str, key: str) -> bool:
        """Remove one entry; True when it existed."""
        ...

    def clear(self, namespace: str | None) -> int:
        """Remove a namespace (or every namespace of this cache); the count removed if known."""
        ...

    def size(self) -> tuple[int | None, int | None]:
        """(entries, bytes) where cheap to know, else None."""
        ...

    def add_counts(self, deltas: Mapping[str, int]) -> None:
        """Add counter deltas to the totals shared by every process (no-op when not shared)."""
        ...

    def read_counts(self) -> dict[str, int] | None:
        """The shared counter totals, or None when this tier keeps none."""
        ...

    def reset_counts(self) -> None:
        """Zero the shared counters."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class MemoryBackend:
    """A thread-safe LRU bounded by entries and bytes, with expiry on an injectable clock."""

    name = "memory"
    outage_errors: tuple[type[BaseException], ...] = ()
    shares_counts = False

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[bytes, float | None]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _cost(key: tuple[str, str], value: bytes) -> int:
        return len(value) + len(key[0]) + len(key[1])

    def get(self, namespace: str, key: str) -> Found | None:
        """The value if present and not expired; marks it most recently used."""
        entry_key = (namespace, key)
        with self._lock:
            entry = self._entries.get(entry_key)
            if entry is None:
                return None
            value, expires_at = entry
            remaining = None if expires_at is None else expires_at - self._clock()
            if remaining is not None and remaining <= 0:
                self._remove(entry_key)
                return None
            self._entries.move_to_end(entry_key)
            return value, remaining

    def set(self, namespace: str, key: str, value: bytes, ttl_seconds: float | None) -> None:
        """Store value and evict the least recently used entries past either bound."""
        entry_key = (namespace, key)
        cost = self._cost(entry_key, value)
        with self._lock:
            self._remove(entry_key)
            if cost > self.max_bytes or self.max_entries <= 0:
                return
            expires_at = None if ttl_seconds is None else self._clock() + ttl_seconds
            self._entries[entry_key] = (value, expires_at)
            self._bytes += cost
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._remove(next(iter(self._entries)))

    def _remove(self, entry_key: tuple[str, str]) -> bool:
        entry = self._entries.pop(entry_key, None)
        if entry is None:
            return False
        self._bytes -= self._cost(entry_key, entry[0])
        return True

    def delete(self, namespace: str, key: str) -> bool:
        """Remove one entry."""
        with self._lock:
            return self._remove((namespace, key))

    def clear(self, namespace: str | None) -> int:
        """Remove one namespace or everything."""
        with self._lock:
            doomed = [key for key in self._entries if namespace is None or key[0] == namespace]
            for entry_key in doomed:
                self._remove(entry_key)
            return len(doomed)

    def size(self) -> tuple[int | None, int | None]:
        """Exact entries and bytes (values plus keys)."""
        with self._lock:
            return len(self._entries), self._bytes

    def add_counts(self, deltas: Mapping[str, int]) -> None:
        """Memory keeps no shared counters."""

    def read_counts(self) -> dict[str, int] | None:
        """Memory keeps no shared counters."""
        return None

    def reset_counts(self) -> None:
        """Memory keeps no shared counters."""

    def close(self) -> None:
        """Drop every entry."""
        self.clear(None)


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


class RedisBackend:
    """Redis through a pooled redis-py client that fails fast: no retries, no back-off."""

    name = "redis"
    shares_counts = True

    def __init__(
        self, url: str, prefix: str, timeout_seconds: float = 0.5, client: Any = None
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.outage_errors = _redis_errors()
        self.prefix = check_name("prefix", prefix)
        self.client = client or redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._stats_key = f"{prefix}:stats"

    def _key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}:v:{namespace}:{key}"

    def get(self, namespace: str, key: str) -> Found | None:
        """GET and PTTL in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self._key(namespace, key))
        pipe.pttl(self._key(namespace, key))
        value, ttl_ms = pipe.execute()
        if value is None:
            return None
        return bytes(value), (ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else None)

    def set(self, namespace: str, key: str, value: bytes, ttl_seconds: float | None) -> None:
        """SET with a millisecond expiry."""
        expiry = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        self.client.set(self._key(namespace, key), value, px=expiry)

    def delete(self, namespace: str, key: str) -> bool:
        """UNLINK one key."""
        return bool(self.client.unlink(self._key(namespace, key)))

    def clear(self, namespace: str | None) -> int:
        """SCAN this prefix (one namespace or all) and UNLINK in batches; never KEYS or FLUSHDB."""
        pattern = f"{self.prefix}:v:{namespace}:*" if namespace else f"{self.prefix}:v:*"
        removed = 0
        batch: list[bytes] = []
        for found in self.client.scan_iter(match=pattern, count=1000):
            batch.append(found)
            if len(batch) >= 1000:
                removed += self.client.unlink(*batch)
                batch.clear()
        if batch:
            removed += self.client.unlink(*batch)
        return removed

    def size(self) -> tuple[int | None, int | None]:
        """Unknown without scanning the whole prefix."""
        return None, None

    def add_counts(self, deltas: Mapping[str, int]) -> None:
        """HINCRBY every delta in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for field_name, amount in deltas.items():
            pipe.hincrby(self._stats_key, field_name, amount)
        pipe.execute()

    def read_counts(self) -> dict[str, int] | None:
        """HGETALL of the stats hash."""
        fields: dict[bytes, bytes] = self.client.hgetall(self._stats_key)  # type: ignore[assignment]
        return {name.decode(): int(value) for name, value in fields.items()}

    def reset_counts(self) -> None:
        """UNLINK the stats hash."""
        self.client.unlink(self._stats_key)

    def close(self) -> None:
        """Close the pool's connections."""
        self.client.close()
