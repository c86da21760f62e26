"""A circuit breaker per cache tier: an outage costs one fast failure and one warning."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from store.cache.stats import ERRORS, SKIPPED, StatsRecorder

if TYPE_CHECKING:
    from store.cache.backends import Backend

logger = logging.getLogger("incidex.cache")

T = TypeVar("T")


class Guard:
    """Runs a tier's calls; after a failure skips the tier for a while, then tries it again."""

    def __init__(
        self,
        tier_name: str,
        outage_errors: tuple[type[BaseException], ...],
        recorder: StatsRecorder,
        retry_interval_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tier_name = tier_name
        self.outage_errors = outage_errors
        self.retry_interval_seconds = retry_interval_seconds
        self._recorder = recorder
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._down_since: float | None = None

    @property
    def available(self) -> bool:
        """False while the tier is in an outage that has not yet been seen to end."""
        return self._down_since is None

    def run(self, namespace: str, call: Callable[[], T], fallback: T) -> T:
        """call(), or fallback when the tier is skipped or fails with an outage error."""
        with self._lock:
            skip = self._open_until is not None and self._clock() < self._open_until
        if skip:
            self._recorder.add(self.tier_name, namespace, SKIPPED)
            return fallback
        try:
            result = call()
        except self.outage_errors as error:
            self._failed(namespace, error)
            return fallback
        if self._down_since is not None:
            self._recovered()
        return result

    def _failed(self, namespace: str, error: BaseException) -> None:
        with self._lock:
            now = self._clock()
            self._open_until = now + self.retry_interval_seconds
            first_failure = self._down_since is None
            if first_failure:
                self._down_since = now
        # Counted after opening the breaker: counting may flush through this very guard.
        self._recorder.add(self.tier_name, namespace, ERRORS)
        if first_failure:
            logger.warning(
                "cache tier %s unavailable (%s: %s); calls go to the source, next try in %.1f s",
                self.tier_name,
                type(error).__name__,
                error,
                self.retry_interval_seconds,
            )

    def _recovered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            outage_seconds = self._clock() - self._down_since
            self._down_since = None
            self._open_until = None
        logger.info("cache tier %s is back after %.1f s", self.tier_name, outage_seconds)


def completed(call: Callable[..., object], *args: object) -> bool:
    """Run call(*args) and say it completed (for calls whose result is None)."""
    call(*args)
    return True


def guarded_flush(tier: Backend, guard_ref: list[Guard]) -> Callable[[Mapping[str, int]], bool]:
    """A flush function for the recorder that writes through the shared tier's breaker."""

    failed_before: list[bool] = []

    def flush(deltas: Mapping[str, int]) -> bool:
        try:
            return guard_ref[0].run("", partial(completed, tier.add_counts, deltas), False)
        except Exception:  # counters are a side channel: never let them break a cache call
            if not failed_before:
                failed_before.append(True)
                logger.exception("cache tier %s could not store its counters", tier.name)
            return False

    return flush
