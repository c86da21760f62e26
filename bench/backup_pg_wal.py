"""PostgreSQL backups by WAL against pg_dump + journal, on one private archiving cluster.

    nice -n 10 python bench/backup_pg_wal.py [--analyses 10000] [--repeat 3]

Starts its own cluster (initdb into a temp folder, a free port, WAL archived into a folder;
as the `postgres` OS user when run as root), fills a store of demo analyses on it, then prints
medians of --repeat runs, all from this one run:
  - `backup now` as a pg_basebackup (WAL) and as a pg_dump (the same store, no archive set);
  - a restore to a time a few saves after the snapshot: by WAL replay (base backup unpacked,
    pg_verifybackup, scratch server recovery, pg_amcheck, pg_dump | pg_restore into a new
    database) and by pg_dump + journal replay (the baseline).
The machine is shared and noisy: compare figures within one run only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.backup.restore import drop_postgres_database  # noqa: E402
from store.backup.service import Backups  # noqa: E402
from store.demo.fill import fill_store  # noqa: E402
from store.schemas import AnalysisIn  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402
from tests.conftest import make_record  # noqa: E402
from tests.support.pg_cluster import PostgresCluster  # noqa: E402


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Median seconds of `repeat` runs, the runs, and the last result."""
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), runs, result


def save_some(store: Store, tag: str) -> datetime:
    """A few saves after the snapshot (what the restore replays), and the time after them."""
    for n in range(5):
        store.save_batch([(f"{tag}{n}", AnalysisIn.model_validate(
            make_record(f"BENCH-{tag}-{n}-{m}"))) for m in range(10)])
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def restore_once(backups: Backups, to: datetime) -> Any:
    report = backups.restore(to)
    drop_postgres_database(report.settings)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyses", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("note: shared, noisy machine; compare figures within this run only")
    data = Path(tempfile.mkdtemp(prefix="bench-pgwal-"))
    try:
        run(data, args.analyses, args.repeat)
    finally:
        shutil.rmtree(data, ignore_errors=True)  # the store's folder: snapshots, journal


def run(data: Path, analyses: int, repeat: int) -> None:
    """Fill, then time snapshots and restores both ways (see the module docstring)."""
    with PostgresCluster() as cluster:
        url = cluster.create_database("bench")
        wal = Settings(data_dir=data, database_url=url, backup_pg_wal_dir=cluster.archive)
        dump = wal.model_copy(update={"backup_pg_wal_dir": None})
        with Store.open(wal) as store:
            started = time.perf_counter()
            fill_store(store, analyses, seed=7)
            print(f"fill: {analyses:,} demo analyses in "
                  f"{time.perf_counter() - started:.1f} s")
            size = store.engine.connect().exec_driver_sql(
                "SELECT pg_database_size(current_database())").scalar_one()
            print(f"database {int(size) / 1e6:.1f} MB")
            base, runs, snapshot = timed(Backups(store).now, repeat)
            print(f"backup now, pg_basebackup + WAL: {base:.2f} s median "
                  f"(runs {', '.join(f'{r:.2f}' for r in runs)}), "
                  f"{snapshot.size / 1e6:.1f} MB stored")
            to = save_some(store, "w")
            wal_restore, runs, report = timed(lambda: restore_once(Backups(store), to),
                                              repeat)
            print(f"restore --to (WAL replay): {wal_restore:.2f} s median "
                  f"(runs {', '.join(f'{r:.2f}' for r in runs)}); "
                  f"{report.snapshot_counts['analyses']:,} analyses; {report.amcheck}")
            print("  last run's steps: " + ", ".join(f"{name} {seconds:.1f} s"
                                                     for name, seconds in report.phases.items()))
        with Store.open(dump) as store:
            seconds, runs, snapshot = timed(Backups(store).now, repeat)
            print(f"backup now, pg_dump:             {seconds:.2f} s median "
                  f"(runs {', '.join(f'{r:.2f}' for r in runs)}), "
                  f"{snapshot.size / 1e6:.1f} MB stored")
            to = save_some(store, "d")
            journal_restore, runs, report = timed(lambda: restore_once(Backups(store), to),
                                                  repeat)
            print(f"restore --to (pg_dump + journal): {journal_restore:.2f} s median "
                  f"(runs {', '.join(f'{r:.2f}' for r in runs)}); "
                  f"{report.records_replayed} records replayed")


if __name__ == "__main__":
    main()
