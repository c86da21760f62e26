"""Cache warming: run a callable over items in a low-priority background thread."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("incidex.cache")


@dataclass(frozen=True)
class WarmProgress:
    """How far a warming run has got."""

    done: int
    total: int | None
    failed: int
    finished: bool
    stopped: bool


def _lower_thread_priority() -> None:
    """Nice the calling thread (Linux applies nice per thread); best effort elsewhere."""
    if sys.platform.startswith("linux") and hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class Warmer:
    """Calls work(item) for each item, one at a time, yielding between items; stoppable."""

    def __init__(
        self,
        work: Callable[[Any], Any],
        items: Iterable[Any],
        *,
        on_progress: Callable[[WarmProgress], None] | None = None,
        stop_event: threading.Event | None = None,
        pause_seconds: float = 0.005,
        name: str = "incidex-cache-warm",
    ) -> None:
        self.work = work
        self.items = items
        self.total = len(items) if isinstance(items, Sized) else None
        self.on_progress = on_progress
        self.stop_event = stop_event or threading.Event()
        self.pause_seconds = pause_seconds
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)
        self._done = 0
        self._failed = 0
        self._finished = False
        self._progress_failed = False

    def start(self) -> Warmer:
        """Start the background thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to stop after the current item."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when the run has ended."""
        self._thread.join(timeout)
        return self._finished

    @property
    def progress(self) -> WarmProgress:
        """The progress so far."""
        return WarmProgress(
            self._done, self.total, self._failed, self._finished, self.stop_event.is_set()
        )

    def _report(self) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(self.progress)
        except Exception:  # a broken progress display must not stop the warming
            if not self._progress_failed:
                self._progress_failed = True
                logger.exception("cache warming progress callback failed")

    def _yield(self) -> None:
        if self.pause_seconds > 0:
            self.stop_event.wait(self.pause_seconds)
        else:
            time.sleep(0)

    def run(self) -> WarmProgress:
        """Warm every item (in the calling thread when called directly); returns the progress."""
        if threading.current_thread() is self._thread:
            _lower_thread_priority()
        try:
            for item in self.items:
                if self.stop_event.is_set():
                    break
                try:
                    self.work(item)
                except Exception as error:  # one bad item must not end the run
                    self._failed += 1
                    logger.debug("cache warming failed for %r: %s", item, error)
                self._done += 1
                self._report()
                self._yield()
        finally:
            self._finished = True
            self._report()
        return self.progress


def warm_in_background(
    work: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    on_progress: Callable[[WarmProgress], None] | None = None,
    stop_event: threading.Event | None = None,
    pause_seconds: float = 0.005,
) -> Warmer:
    """Start a Warmer over items and return it (stop() or the stop_event ends it early)."""
    warmer = Warmer(
        work, items, on_progress=on_progress, stop_event=stop_event, pause_seconds=pause_seconds
    )
    return warmer.start()
