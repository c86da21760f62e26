"""A team on one database: simulated analysts at once, then `verify` on the result.

    python bench/team_load.py [--backend postgres|sqlite|both] [--analysts N]
                              [--seconds 60] [--prefill 2000]

Each analyst is a process with its own Store (its own engine, vector index and cache) that
loops until the time is up: saving a small batch (new analyses of incidents the others also
touch, in its own order), searching similar incidents, paging the incident list, reading
usage. Prints per operation the count, the rate, p50 and p99 in ms and the errors (which must
be 0), then the same for ONE analyst alone for a third of the time (the baseline, same run),
then whether a fresh process's index and the database agree (`incidex verify`) and whether
every analysis an analyst was told was saved is in the database.
Defaults: 20 analysts on PostgreSQL (INCIDEX_BENCH_POSTGRES_URL or the test server), 8 on SQLite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._records import record  # noqa: E402

POSTGRES_URL = os.environ.get("INCIDEX_BENCH_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
OPERATIONS = ("save", "similar", "page", "usage")
WEIGHTS = (2, 3, 4, 1)  # analysts mostly read; one in five operations writes
SAVE_BATCH = 5
SHARED_INCIDENTS = 200  # saves pick from these, so writers overlap all the time


def analyst(number: int, url: str, data_dir: str, seconds: float, prefill: int,
            start: Any, results: Any) -> None:
    """One analyst's loop; puts (latencies by operation, errors, saved analysis ids)."""
    from store.ingest.records import validate_record
    from store.settings import Settings
    from store.store import Store

    rng = random.Random(number)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    saved: list[str] = []
    settings = Settings(data_dir=Path(data_dir), database_url=url)
    store = Store.open(settings)
    store.prepare_text_search()
    start.wait()
    deadline = time.monotonic() + seconds
    counter = 0
    while time.monotonic() < deadline:
        operation = rng.choices(OPERATIONS, WEIGHTS)[0]
        began = time.perf_counter()
        try:
            if operation == "save":
                batch = []
                for _ in range(SAVE_BATCH):
                    counter += 1
                    shared = rng.randrange(SHARED_INCIDENTS)
                    document = record(shared, prefix="B")
                    document["analysis"]["summary"] += f" (analyst {number}, take {counter})"
                    batch.append((f"a{number}-{counter}", validate_record(document, "bench")))
                outcome = store.save_many(batch)
                errors += [str(result.error) for result in outcome if result.status == "error"]
                saved += [result.analysis_id for result in outcome if result.status == "saved"]
            elif operation == "similar":
                store.similar(incident_id=f"B-{rng.randrange(prefill):08d}", k=10)
            elif operation == "page":
                page = store.incidents_page(limit=100)
                if page.next_cursor is not None:
                    store.incidents_page(after=page.next_cursor, limit=100)
            else:
                store.usage_by_model()
                store.usage_by_day(30)
        except Exception as error:  # noqa: BLE001 - every failure is a counted error
            errors.append(f"{operation}: {type(error).__name__}: {error}")
            if len(errors) < 3:
                traceback.print_exc()
        latencies[operation].append((time.perf_counter() - began) * 1000)
    store.close()
    results.put((dict(latencies), errors, saved))


def run(url: str, data_dir: Path, analysts: int, seconds: float, prefill: int
        ) -> tuple[dict[str, list[float]], list[str], list[str], float]:
    """Start the analysts together; their merged latencies, errors, saved ids, wall time."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(analysts + 1)
    results = context.Queue()
    processes = [context.Process(target=analyst, args=(n, url, str(data_dir), seconds, prefill,
                                                       start, results)) for n in range(analysts)]
    for process in processes:
        process.start()
    start.wait(timeout=600)
    began = time.perf_counter()
    merged: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    saved: list[str] = []
    for _ in processes:
        latencies, worker_errors, worker_saved = results.get(timeout=seconds + 600)
        for operation, values in latencies.items():
            merged[operation] += values
        errors += worker_errors
        saved += worker_saved
    wall = time.perf_counter() - began
    for process in processes:
        process.join()
    return merged, errors, saved, wall


def report(title: str, latencies: dict[str, list[float]], errors: list[str],
           wall: float) -> None:
    """Print one table: operation, count, rate, p50, p99, and the errors."""
    total = sum(len(values) for values in latencies.values())
    print(f"\n{title}: {total} operations in {wall:.1f} s = {total / wall:.1f} ops/s, "
          f"errors {len(errors)}")
    print(f"  {'operation':<9} {'count':>7} {'per s':>8} {'p50 ms':>9} {'p99 ms':>9}")
    for operation in OPERATIONS:
        values = sorted(latencies.get(operation, []))
        if not values:
            continue
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"  {operation:<9} {len(values):>7} {len(values) / wall:>8.1f} "
              f"{statistics.median(values):>9.1f} {p99:>9.1f}")
    for error in errors[:5]:
        print(f"  error: {error[:200]}")


def fill(url: str, data_dir: Path, count: int) -> None:
    """Create the schema and `count` incidents with one analysis each."""
    from store.ingest.records import validate_record
    from store.settings import Settings
    from store.store import Store

    with Store.open(Settings(data_dir=data_dir, database_url=url)) as store:
        batch = [(f"fill {n}", validate_record(record(n, prefix="B"), "fill"))
                 for n in range(count)]
        store.save_many(batch)


def check(url: str, data_dir: Path, saved: list[str]) -> None:
    """verify in a fresh process's view, and every reported save present in the database."""
    from sqlalchemy import select

    from store.db.models import Analysis
    from store.settings import Settings
    from store.store import Store

    with Store.open(Settings(data_dir=data_dir, database_url=url)) as store:
        verdict = store.verify_vectors(sample=500)
        with store.engine.connect() as connection:
            present = {row[0] for row in connection.execute(select(Analysis.analysis_id))}
        summary = store.summary()
    missing = [analysis_id for analysis_id in saved if analysis_id not in present]
    print(f"  verify: {'in step' if verdict.in_step else 'DRIFT'} "
          f"({verdict.index_vectors} vectors in the index, {verdict.database_vectors} in the "
          f"database, {verdict.pending} pending); {summary.incidents} incidents, "
          f"{summary.analyses} analyses; saved but missing: {len(missing)}")
    if not verdict.in_step:
        for line in verdict.lines():
            print(f"    {line}")


@contextmanager
def database(backend: str) -> Iterator[tuple[str, Path]]:
    """A fresh store: a private PostgreSQL schema or a SQLite file, and its data directory."""
    with tempfile.TemporaryDirectory(prefix="incidex-team-") as scratch:
        data_dir = Path(scratch) / "data"
        if backend == "sqlite":
            yield f"sqlite:///{data_dir / 'incident_analysis.db'}", data_dir
            return
        from sqlalchemy import create_engine, text

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", data_dir
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def bench(backend: str, analysts: int, seconds: float, prefill: int) -> int:
    """Baseline (one analyst) and the team on one backend; 1 if any error or drift."""
    print(f"\n=== {backend}: {analysts} analysts for {seconds:g} s, store prefilled with "
          f"{prefill} incidents ===")
    errors_total = 0
    with database(backend) as (url, data_dir):
        fill(url, data_dir, prefill)
        latencies, errors, saved, wall = run(url, data_dir, 1, seconds / 3, prefill)
        report("baseline, 1 analyst alone", latencies, errors, wall)
        errors_total += len(errors)
        latencies, errors, team_saved, wall = run(url, data_dir, analysts, seconds, prefill)
        report(f"{analysts} analysts at once", latencies, errors, wall)
        errors_total += len(errors)
        check(url, data_dir, saved + team_saved)
    return 1 if errors_total else 0


def main() -> int:
    """Parse the options and run the chosen backends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--analysts", type=int, default=None,
                        help="analysts at once (default 20 on PostgreSQL, 8 on SQLite)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--prefill", type=int, default=2000)
    options = parser.parse_args()
    backends = ["postgres", "sqlite"] if options.backend == "both" else [options.backend]
    status = 0
    for backend in backends:
        analysts = options.analysts or (20 if backend == "postgres" else 8)
        status |= bench(backend, analysts, options.seconds, options.prefill)
    return status


if __name__ == "__main__":
    sys.exit(main())
