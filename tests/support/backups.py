"""What the backup tests share: save a batch and note the time after it, the analyses a
(restored) store holds, and restored stores removed after a test."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from store.schemas import AnalysisIn
from store.store import Store
from tests.conftest import make_record


def mark() -> datetime:
    """Now, then a short pause: the next commit's time is strictly after the mark."""
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def save(store: Store, *incident_ids: str, **overrides: Any) -> datetime:
    """Save one batch (one analysis per incident id) and return the time just after it."""
    results = store.save_batch([(f"line {n}", AnalysisIn.model_validate(
        make_record(i, **overrides))) for n, i in enumerate(incident_ids)])
    assert {r.status for r in results} == {"saved"}, results
    return mark()


def incident_ids(store: Store) -> list[str]:
    """The ids of the store's incidents (up to 1,000)."""
    return [row.incident_id for row in store.incidents_page(limit=1000).rows]


def analysis_ids(settings: Any) -> set[str]:
    """The analysis ids of the store these settings name."""
    with Store.open(settings, create=False) as opened:
        return {a.analysis_id for i in incident_ids(opened) for a in opened.analyses(i)}


def drop_restored(reports: list[Any]) -> None:
    """Drop the PostgreSQL databases of these restore reports (folders go with tmp_path)."""
    from store.backup.restore import drop_postgres_database

    for report in reports:
        if report.settings.database_url:
            drop_postgres_database(report.settings)
