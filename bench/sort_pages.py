"""How fast the incident list pages in each sort, on a big store (default 1,000,000 incidents).

    python bench/sort_pages.py                      # SQLite, 1,000,000 incidents, in a temp dir
    python bench/sort_pages.py --count 200000
    python bench/sort_pages.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

Incident rows are written straight into a migrated schema (no analyses: the list reads only
the incidents table). For every sort, both directions: the first page, a page 50 pages deep
(reached by keyset cursors, timed on its own), the last page, a first page filtered by a
common word and one filtered by facets (severity and a date range).
Figures are medians of --repeat runs; the baseline is the "updated" sort, which the list has
always had, measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from store.db.models import Incident, severity_rank, table_of  # noqa: E402
from store.schemas import INCIDENT_SORTS  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402

SEVERITIES = ["critical", "high", "medium", "low", "info", None]
WORDS = ["phishing", "ransomware", "beaconing", "exfiltration", "credential", "stuffing",
         "macro", "invoice", "insider", "misconfiguration", "bucket", "laptop"]


def fill(store: Store, count: int, batch: int = 20_000) -> None:
    """Write `count` incident rows with varied sort keys (ties included)."""
    random.seed(7)
    table = table_of(Incident)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with store.engine.connect() as connection:
        existing = connection.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    if existing >= count:
        return
    for offset in range(existing, count, batch):
        rows = []
        for number in range(offset, min(count, offset + batch)):
            created = start + timedelta(minutes=number // 3)
            severity = random.choice(SEVERITIES)
            rows.append({
                "incident_id": f"INC-{number:08d}",
                "title": " ".join(random.sample(WORDS, 3)),
                "description": "", "initial_findings": "",
                "created_at": created,
                "updated_at": created + timedelta(hours=random.randint(0, 48)),
                "analysis_count": random.choice([1, 1, 1, 2, 2, 3, 5]),
                "latest_severity": severity,
                "severity_rank": severity_rank(severity),
                "cost_nano_usd": random.choice([0, random.randint(1, 5_000_000)]),
            })
        with store.engine.begin() as connection:
            connection.execute(table.insert(), rows)


def median_ms(run, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def measure(store: Store, sort: str, descending: bool, repeat: int) -> dict[str, float]:
    """Median milliseconds of the first, a deep, the last and a filtered page."""
    page = store.incidents_page(sort=sort, descending=descending)  # type: ignore[arg-type]
    for _ in range(49):
        assert page.next_cursor is not None
        page = store.incidents_page(sort=sort, descending=descending,  # type: ignore[arg-type]
                                    after=page.next_cursor)
    deep = page.next_cursor
    return {
        "first": median_ms(lambda: store.incidents_page(
            sort=sort, descending=descending), repeat),  # type: ignore[arg-type]
        "page 51": median_ms(lambda: store.incidents_page(
            sort=sort, descending=descending, after=deep), repeat),  # type: ignore[arg-type]
        "last": median_ms(lambda: store.incidents_page(
            sort=sort, descending=descending, from_end=True), repeat),  # type: ignore[arg-type]
        "filtered": median_ms(lambda: store.incidents_page(
            sort=sort, descending=descending, query="ransomware"), repeat),  # type: ignore[arg-type]
        "facets": median_ms(lambda: store.incidents_page(
            sort=sort, descending=descending,  # type: ignore[arg-type]
            query="severity:high,critical since:2026-06-01"), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="incidex-sort-bench-"))
    settings = Settings(data_dir=data_dir, database_url=arguments.database_url)
    with Store.open(settings) as store:
        began = time.perf_counter()
        fill(store, arguments.count)
        print(f"{arguments.count:,} incidents ready in {time.perf_counter() - began:.1f} s "
              f"({store.engine.dialect.name}, {data_dir})")
        print(f"{'sort':<12} {'order':<5} {'first':>8} {'page 51':>8} {'last':>8} "
              f"{'filtered':>9} {'facets':>8}   (median ms of {arguments.repeat})")
        for sort in INCIDENT_SORTS:
            for descending in (True, False):
                figures = measure(store, sort, descending, arguments.repeat)
                label = f"{sort}{' (baseline)' if sort == 'updated' and descending else ''}"
                print(f"{label:<12} {'desc' if descending else 'asc':<5} "
                      + " ".join(f"{figures[name]:>8.2f}" for name in
                                 ("first", "page 51", "last"))
                      + f" {figures['filtered']:>9.2f} {figures['facets']:>8.2f}")


if __name__ == "__main__":
    main()
