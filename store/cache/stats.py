"""Cache counters: in-process totals plus batched flushes to a store shared by processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

HITS = "hits"
MISSES = "misses"
SETS = "sets"
DELETES = "deletes"
ERRORS = "errors"
SKIPPED = "skipped"
BYTES_WRITTEN = "bytes_written"
TOKENS_SAVED = "tokens_saved"
NANO_USD_SAVED = "nano_usd_saved"

#: The scope of counters about the cache as a whole (a hit in any tier, a miss in all).
ALL = "all"

NANOS_PER_USD = 10**9

CounterKey = tuple[str, str, str]


@dataclass(frozen=True)
class Savings:
    """What one original call cost, credited again on every cache hit that replaces it."""

    tokens: int = 0
    cost_usd: Decimal | float = 0

    @property
    def nano_usd(self) -> int:
        """The cost in billionths of a dollar, the unit counters are kept in."""
        return int(round(Decimal(str(self.cost_usd)) * NANOS_PER_USD))


def encode_counter_key(key: CounterKey) -> str:
    """The text form of a counter key used by the shared stores."""
    return "|".join(key)


def decode_counter_key(text: str) -> CounterKey | None:
    """The counter key of a shared-store field, or None when it is not one."""
    parts = text.split("|")
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class StatsSnapshot:
    """Counter values at one moment, keyed by (scope, namespace, event)."""

    counts: Mapping[CounterKey, int] = field(default_factory=dict)

    def total(self, event: str, scope: str = ALL, namespace: str | None = None) -> int:
        """The sum of one event over a scope, for one namespace or all of them."""
        return sum(
            value
            for (item_scope, item_namespace, item_event), value in self.counts.items()
            if item_scope == scope
            and item_event == event
            and (namespace is None or item_namespace == namespace)
        )

    def namespaces(self) -> list[str]:
        """Namespaces with at least one counter, sorted."""
        return sorted({namespace for _, namespace, _ in self.counts if namespace})

    def scopes(self) -> list[str]:
        """Scopes (ALL and tier names) with at least one counter, sorted."""
        return sorted({scope for scope, _, _ in self.counts})

    @property
    def hits(self) -> int:
        """Lookups served from any tier."""
        return self.total(HITS)

    @property
    def misses(self) -> int:
        """Lookups no tier could serve."""
        return self.total(MISSES)

    @property
    def tokens_saved(self) -> int:
        """Tokens the calls replaced by hits had cost."""
        return self.total(TOKENS_SAVED)

    @property
    def cost_usd_saved(self) -> Decimal:
        """Dollars the calls replaced by hits had cost."""
        return Decimal(self.total(NANO_USD_SAVED)) / NANOS_PER_USD

    def hit_rate(self, namespace: str | None = None) -> float | None:
        """Hits over lookups, or None before the first lookup."""
        hits = self.total(HITS, namespace=namespace)
        lookups = hits + self.total(MISSES, namespace=namespace)
        return hits / lookups if lookups else None

    def as_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        """Nested {scope: {namespace: {event: value}}} for JSON output."""
        nested: dict[str, dict[str, dict[str, int]]] = {}
        for (scope, namespace, event), value in sorted(self.counts.items()):
            nested.setdefault(scope, {}).setdefault(namespace, {})[event] = value
        return nested


@dataclass(frozen=True)
class TierInfo:
    """One tier's name, whether it answers now, and its size where that is cheap to know."""

    name: str
    available: bool
    entries: int | None
    size_bytes: int | None


@dataclass(frozen=True)
class CacheStats:
    """This process's counters, the totals shared by every process (when kept), and tier sizes."""

    process: StatsSnapshot
    shared: StatsSnapshot | None
    tiers: list[TierInfo]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for `incidex cache stats --json`."""
        totals = self.shared if self.shared is not None else self.process
        return {
            "hits": totals.hits,
            "misses": totals.misses,
            "hit_rate": totals.hit_rate(),
            "tokens_saved": totals.tokens_saved,
            "cost_usd_saved": str(totals.cost_usd_saved),
            "tiers": [tier.__dict__ for tier in self.tiers],
            "process": self.process.as_dict(),
            "shared": None if self.shared is None else self.shared.as_dict(),
        }


class StatsRecorder:
    """Counts events in process and pushes the deltas to a shared store every few seconds."""

    def __init__(
        self,
        flush: Callable[[Mapping[str, int]], bool] | None,
        flush_interval_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flush = flush
        self._flush_interval = flush_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._totals: dict[CounterKey, int] = {}
        self._pending: dict[CounterKey, int] = {}
        self._last_flush = clock()

    def add(self, scope: str, namespace: str, event: str, amount: int = 1) -> None:
        """Count amount of one event; flush to the shared store when the interval has passed."""
        key = (scope, namespace, event)
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + amount
            self._pending[key] = self._pending.get(key, 0) + amount
            due = self._clock() - self._last_flush >= self._flush_interval
        if due and self._flush is not None:
            self.flush()

    def snapshot(self) -> StatsSnapshot:
        """This process's counters since it started (or since reset)."""
        with self._lock:
            return StatsSnapshot(dict(self._totals))

    def flush(self) -> bool:
        """Push pending deltas to the shared store; keep them for later when it does not answer."""
        if self._flush is None or not self._flush_lock.acquire(blocking=False):
            return False
        try:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._last_flush = self._clock()
            if not pending:
                return True
            written = self._flush({encode_counter_key(key): n for key, n in pending.items()})
            if not written:
                with self._lock:
                    for key, amount in pending.items():
                        self._pending[key] = self._pending.get(key, 0) + amount
            return written
        finally:
            self._flush_lock.release()

    def reset(self) -> None:
        """Forget this process's counters, including deltas not yet flushed."""
        with self._lock:
            self._totals.clear()
            self._pending.clear()


def snapshot_from_fields(fields: Mapping[str, int]) -> StatsSnapshot:
    """A snapshot from a shared store's {encoded key: value} fields, skipping foreign fields."""
    counts: dict[CounterKey, int] = {}
    for text, value in fields.items():
        key = decode_counter_key(text)
        if key is not None:
            counts[key] = counts.get(key, 0) + int(value)
    return StatsSnapshot(counts)
