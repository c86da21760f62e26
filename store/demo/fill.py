"""Filling a store with demo data: the one loop behind `incidex demo` and the app's `d` key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from store.schemas import AnalysisIn

if TYPE_CHECKING:
    from store.store import Store

log = logging.getLogger("incidex.demo")


def fill_store(store: Store, count: int, seed: int = 0, *, offset: int = 0,
               batch_size: int = 2000, stop: threading.Event | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> int:
    """Save demo records offset..offset+count-1 in batches and build the index snapshot.

    The data is relative to today (midnight UTC), so a seed gives the same records all
    day. Returns how many analyses were new; `stop` ends the fill between batches.
    """
    from store.demo.generator import generate_records

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    saved = done = 0
    batch: list[tuple[str, AnalysisIn]] = []

    def flush() -> None:
        nonlocal saved, done, batch
        for result in store.save_many(batch):
            if result.status == "error":
                log.warning("demo record not saved: %s", result.error)
            saved += result.status == "saved"
        done += len(batch)
        batch = []
        if on_progress is not None:
            on_progress(done, count)

    records = generate_records(offset + count, seed, now=today, start=offset)
    for index, record in enumerate(records, start=offset):
        if stop is not None and stop.is_set():
            break
        batch.append((f"demo {index}", AnalysisIn.model_validate(record)))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    # So that the first similar search does not build the index from the database.
    store.vectors.index()
    store.vectors.snapshot(force=True)
    return saved
