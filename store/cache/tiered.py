"""The tiered cache: memory in front of Redis or an on-disk cache, each tier behind a breaker."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from store.cache.backends import Backend, MemoryBackend, RedisBackend, RefusedValue
from store.cache.guard import Guard, completed, guarded_flush
from store.cache.keys import (
    check_key,
    check_name,
    pack_entry,
    unpack_entry,
)
from store.cache.stats import (
    ALL,
    BYTES_WRITTEN,
    DELETES,
    ERRORS,
    HITS,
    MISSES,
    NANO_USD_SAVED,
    SETS,
    TOKENS_SAVED,
    CacheStats,
    Savings,
    StatsRecorder,
    StatsSnapshot,
    TierInfo,
    snapshot_from_fields,
)
from store.errors import StoreUnavailable
from store.redact import safe_reason

if TYPE_CHECKING:
    from store.settings import Settings


logger = logging.getLogger("incidex.cache")

DAY_SECONDS = 24 * 3600
_DOWN = object()


@dataclass(frozen=True)
class Entry:
    """A cache hit: the value, the tier that served it and what the original call had cost."""

    value: bytes
    tier: str
    tokens: int
    nano_usd: int


class Cache:
    """Tiers tried in order; a hit in a later tier fills the earlier ones."""

    def __init__(
        self,
        tiers: Sequence[Backend],
        *,
        default_ttl_seconds: float | None = 30 * DAY_SECONDS,
        front_ttl_seconds: float | None = 600.0,
        retry_interval_seconds: float = 3.0,
        stats_flush_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tiers:
            raise ValueError("a cache needs at least one tier")
        self.tiers = list(tiers)
        self.default_ttl_seconds = default_ttl_seconds
        self.front_ttl_seconds = front_ttl_seconds
        shared = [index for index, tier in enumerate(self.tiers) if tier.shares_counts]
        self._shared_index = shared[-1] if shared else None
        guard_ref: list[Guard] = []
        flush = None
        if self._shared_index is not None:
            flush = guarded_flush(self.tiers[self._shared_index], guard_ref)
        self._recorder = StatsRecorder(flush, stats_flush_seconds, clock)
        self._guards = [
            Guard(tier.name, tier.outage_errors, self._recorder, retry_interval_seconds, clock)
            for tier in self.tiers
        ]
        if self._shared_index is not None:
            guard_ref.append(self._guards[self._shared_index])
        self._finalizer = weakref.finalize(self, self._recorder.flush)

    @property
    def is_remote(self) -> bool:
        """True when some tier does I/O (Redis or disk), so async callers use a thread."""
        return any(tier.name != "memory" for tier in self.tiers)

    def lookup(self, namespace: str, key: str) -> Entry | None:
        """The entry under (namespace, key) from the first tier that has it, or None."""
        check_name("namespace", namespace)
        check_key(key)
        for index, (tier, guard) in enumerate(zip(self.tiers, self._guards, strict=True)):
            read: object = guard.run(namespace, partial(self._read, tier, namespace, key), _DOWN)
            if read is _DOWN:
                continue
            found = cast("tuple[bytes, float | None] | None", read)
            if found is None:
                self._recorder.add(tier.name, namespace, MISSES)
                continue
            data, remaining = found
            unpacked = unpack_entry(data)
            if unpacked is None:
                self._recorder.add(tier.name, namespace, ERRORS)
                continue
            self._recorder.add(tier.name, namespace, HITS)
            self._fill(index, namespace, key, data, remaining)
            value, tokens, nano_usd = unpacked
            self._credit_hit(namespace, tokens, nano_usd)
            return Entry(value, tier.name, tokens, nano_usd)
        self._recorder.add(ALL, namespace, MISSES)
        return None

    def _read(self, tier: Backend, namespace: str, key: str) -> tuple[bytes, float | None] | None:
        try:
            return tier.get(namespace, key)
        except RefusedValue as refused:
            logger.warning("cache tier %s refused an entry: %s", tier.name, refused)
            self._recorder.add(tier.name, namespace, ERRORS)
            return None

    def _credit_hit(self, namespace: str, tokens: int, nano_usd: int) -> None:
        self._recorder.add(ALL, namespace, HITS)
        if tokens:
            self._recorder.add(ALL, namespace, TOKENS_SAVED, tokens)
        if nano_usd:
            self._recorder.add(ALL, namespace, NANO_USD_SAVED, nano_usd)

    def _fill(
        self, hit_index: int, namespace: str, key: str, data: bytes, remaining: float | None
    ) -> None:
        for index in range(hit_index):
            ttl = self._tier_ttl(index, remaining)
            self._write(index, namespace, key, data, ttl)

    def _tier_ttl(self, index: int, ttl_seconds: float | None) -> float | None:
        """Front tiers keep entries briefly, so other processes' invalidations reach them."""
        if index == len(self.tiers) - 1 or self.front_ttl_seconds is None:
            return ttl_seconds
        if ttl_seconds is None:
            return self.front_ttl_seconds
        return min(ttl_seconds, self.front_ttl_seconds)

    def _write(self, index: int, namespace: str, key: str, data: bytes, ttl: float | None) -> bool:
        tier, guard = self.tiers[index], self._guards[index]
        stored = guard.run(
            namespace, partial(completed, tier.set, namespace, key, data, ttl), False
        )
        if stored:
            self._recorder.add(tier.name, namespace, SETS)
            self._recorder.add(tier.name, namespace, BYTES_WRITTEN, len(data))
        return stored

    def get(self, namespace: str, key: str) -> bytes | None:
        """The bytes under (namespace, key), or None on a miss (a cached b'' is not a miss)."""
        entry = self.lookup(namespace, key)
        return None if entry is None else entry.value

    def set(
        self,
        namespace: str,
        key: str,
        value: bytes,
        ttl_seconds: float | None = None,
        *,
        savings: Savings | None = None,
    ) -> bool:
        """Store value in every tier that answers; True when at least one stored it.

        ttl_seconds None means the cache's default; savings is what producing value cost,
        credited to the stats on every later hit.
        """
        check_name("namespace", namespace)
        check_key(key)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"cache values are bytes, got {type(value).__name__}")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive (or None for the default)")
        ttl = self.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        data = pack_entry(bytes(value), savings)
        results = [
            self._write(index, namespace, key, data, self._tier_ttl(index, ttl))
            for index in range(len(self.tiers))
        ]
        if any(results):
            self._recorder.add(ALL, namespace, SETS)
        return any(results)

    def delete(self, namespace: str, key: str) -> bool:
        """Remove one entry from every tier; True when some tier had it."""
        check_name("namespace", namespace)
        check_key(key)
        removed = False
        for tier, guard in zip(self.tiers, self._guards, strict=True):
            if guard.run(namespace, partial(tier.delete, namespace, key), False):
                removed = True
                self._recorder.add(tier.name, namespace, DELETES)
        return removed

    def clear(self, namespace: str | None = None) -> int:
        """Remove one namespace (or all of this cache's entries); the most any tier removed."""
        if namespace is not None:
            check_name("namespace", namespace)
        counts = [
            guard.run(namespace or "", partial(tier.clear, namespace), 0)
            for tier, guard in zip(self.tiers, self._guards, strict=True)
        ]
        return max(counts)

    def clear_everywhere(self, namespace: str | None = None) -> int:
        """Remove one namespace (or everything) from every tier, or raise StoreUnavailable
        naming the tier that did not answer (its entries stay); the most any tier removed."""
        if namespace is not None:
            check_name("namespace", namespace)
        counts = []
        for tier in self.tiers:
            try:
                counts.append(tier.clear(namespace))
            except tier.outage_errors as error:
                raise StoreUnavailable(f"cache clear: the {tier.name} cache is down, nothing "
                                       f"was removed there ({type(error).__name__}: "
                                       f"{safe_reason(error, limit=200)})") from None
        return max(counts)

    def flush_stats(self) -> bool:
        """Push this process's pending counters to the shared tier now."""
        return self._recorder.flush()

    def stats(self) -> CacheStats:
        """This process's counters, the shared totals (Redis or disk) and each tier's size."""
        shared: StatsSnapshot | None = None
        if self._shared_index is not None:
            self._recorder.flush()
            tier = self.tiers[self._shared_index]
            fields = self._guards[self._shared_index].run("", tier.read_counts, None)
            shared = None if fields is None else snapshot_from_fields(fields)
        infos = []
        for tier, guard in zip(self.tiers, self._guards, strict=True):
            unknown: tuple[int | None, int | None] = (None, None)
            entries, size_bytes = guard.run("", tier.size, unknown)
            infos.append(TierInfo(tier.name, guard.available, entries, size_bytes))
        return CacheStats(self._recorder.snapshot(), shared, infos)

    def reset_stats(self) -> None:
        """Zero this process's counters and the shared ones."""
        self._recorder.reset()
        if self._shared_index is not None:
            tier = self.tiers[self._shared_index]
            self._guards[self._shared_index].run("", tier.reset_counts, None)

    def close(self) -> None:
        """Flush the counters and release every tier's connections."""
        self._recorder.flush()
        for tier in self.tiers:
            tier.close()


def _option(settings: Settings, name: str, default: float) -> float:
    """A cache setting if Settings defines it, else the default."""
    value = getattr(settings, name, None)
    return default if value is None else value


def make_cache(settings: Settings, prefix: str = "incidex") -> Cache:
    """Memory in front of Redis (when redis_url is set) or of a disk cache under the data dir."""
    from store.cache.disk import DiskBackend
    from store.locations import cache_directory

    check_name("prefix", prefix)
    memory = MemoryBackend(
        max_entries=int(_option(settings, "cache_memory_max_entries", 10_000)),
        max_bytes=int(_option(settings, "cache_memory_max_bytes", 64 * 1024 * 1024)),
    )
    second: Backend
    if settings.redis_url:
        second = RedisBackend(settings.redis_url, prefix)
    else:
        size_limit = int(_option(settings, "cache_disk_max_bytes", 1024**3))
        second = DiskBackend(cache_directory(settings) / prefix, size_limit_bytes=size_limit)
    return Cache(
        [memory, second],
        default_ttl_seconds=_option(settings, "cache_ttl_seconds", 30 * DAY_SECONDS),
        retry_interval_seconds=_option(settings, "cache_retry_seconds", 3.0),
    )
