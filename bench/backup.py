"""Backups at scale: snapshot and drill time of a large store; save rate with the journal
against one JSON file per analysis (the previous backup), in the same run.

    python bench/backup.py [--analyses 100000] [--save-records 5000] [--repeat 3]
                           [--data DIR]   # reuse a store filled by an earlier run

Prints:
  - the fill time of the store (demo generator, the normal save path with the journal);
  - `backup now` seconds (median of --repeat) and the snapshot's size;
  - `backup drill` seconds (recovery time), the recovery point, and every check;
  - save rate (records/s, median of --repeat, runs interleaved) into fresh stores of
    the same demo records, batches of 500, vectors left pending (INCIDEX_EMBED_ON_SAVE=
    false, the bulk-import mode, so embedding does not drown the backup's cost): the
    journal (what incidex does), one atomic JSON file per analysis written after the commit
    (the previous code, reproduced here), and no backup at all (the database alone).
The machine is shared and noisy: compare figures within one run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from store.backup.service import Backups  # noqa: E402
from store.backup.snapshots import delete_snapshot, list_snapshots  # noqa: E402
from store.demo.fill import fill_store  # noqa: E402
from store.demo.generator import generate_records  # noqa: E402
from store.fileio import (  # noqa: E402
    flush_to_disk,
    fsync_path,
    private_directory,
    safe_name,
    write_temp,
)
from store.schemas import AnalysisIn  # noqa: E402
from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402


def fill(data: Path, count: int) -> None:
    """Fill the store up to `count` demo analyses (resuming a partial fill) and say how fast."""
    with Store.open(Settings(data_dir=data)) as store:
        have = store.summary().analyses
        if have >= count:
            print(f"store at {data} already holds {have:,} analyses")
            return
        started = time.perf_counter()
        fill_store(store, count - have, seed=7, offset=have)
        seconds = time.perf_counter() - started
    print(f"fill: {count - have:,} demo analyses (from {have:,} to {count:,}) in {seconds:.1f} s "
          f"({(count - have) / seconds:,.0f}/s, journal on)")


def snapshot_seconds(data: Path, repeat: int) -> tuple[float, int]:
    """Median seconds of `backup now`, and the last snapshot's bytes (older ones removed)."""
    timings = []
    size = 0
    with Store.open(Settings(data_dir=data)) as store:
        backups = Backups(store)
        for _ in range(repeat):
            started = time.perf_counter()
            snapshot = backups.now()
            timings.append(time.perf_counter() - started)
            size = snapshot.size
        for old in list_snapshots(store.backups)[:-1]:
            delete_snapshot(old)
    return statistics.median(timings), size


def drill(data: Path) -> Any:
    with Store.open(Settings(data_dir=data)) as store:
        return Backups(store).drill()


class _NoJournal:
    """Stands in for the journal: the database alone, or the per-file backup below."""

    directory = Path("/nonexistent")

    def begin(self, bodies: list[dict[str, Any]], at: Any = None) -> Any:
        return None

    def commit(self, ticket: Any, saved: Iterable[str], at: Any = None) -> None:
        return None

    def abort(self, ticket: Any) -> None:
        return None

    def sync(self) -> None:
        return None


def write_per_analysis_files(directory: Path, documents: list[tuple[str, str, dict[str, Any]]]
                             ) -> None:
    """The previous backup: one JSON file per analysis, temp file, one flush, renames, folder
    fsyncs (store/backup/json_files.py before the journal)."""
    incoming = private_directory(directory / ".incoming")
    pending = []
    folders = set()
    for incident_id, analysis_id, document in documents:
        target = directory / "2026-11" / "28" / f"{safe_name(incident_id)}.{analysis_id}.json"
        if target.parent not in folders:
            private_directory(target.parent)
            folders.add(target.parent)
        payload = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        pending.append((write_temp(target, payload, incoming), target))
    flush_to_disk(directory, [temp for temp, _ in pending])
    for temp, target in pending:
        os.replace(temp, target)
    for folder in folders:
        fsync_path(folder)


def save_rate(records: list[AnalysisIn], how: str) -> float:
    """Records per second saving `records` in batches of 500 into a fresh store."""
    with (tempfile.TemporaryDirectory(prefix="bench-backup-") as folder,
          Store.open(Settings(data_dir=Path(folder), embed_on_save=False)) as store):
        if how != "journal":
            store.journal = _NoJournal()  # type: ignore[assignment]
        started = time.perf_counter()
        for start in range(0, len(records), 500):
            chunk = [(f"r{n}", r) for n, r in enumerate(records[start:start + 500])]
            results = store.save_batch(chunk)
            if how == "per-analysis files":
                write_per_analysis_files(store.backups, [
                    (r.incident_id or "", r.analysis_id or "", record.model_dump(mode="json"))
                    for r, (_label, record) in zip(results, chunk, strict=True)
                    if r.status == "saved"])
        return len(records) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyses", type=int, default=100_000)
    parser.add_argument("--save-records", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, help="store folder to (re)use")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-backup-store-"))
    print("note: shared, noisy machine; compare figures within this run only")
    fill(data, args.analyses)
    seconds, size = snapshot_seconds(data, args.repeat)
    database_mb = os.path.getsize(data / "incident_analysis.db") / 1e6
    print(f"backup now: {seconds:.2f} s (median of {args.repeat}), snapshot "
          f"{size / 1e6:.1f} MB, database {database_mb:.1f} MB")
    report = drill(data)
    print(f"backup drill: {'passed' if report.ok else 'FAILED'}; recovery time "
          f"{report.recovery_seconds:.2f} s, recovery point "
          f"{report.recovery_point_seconds:.1f} s")
    for name, passed, detail in report.checks:
        print(f"  {'ok  ' if passed else 'FAIL'} {name}: {detail[:150]}")
    records = [AnalysisIn.model_validate(r) for r in generate_records(args.save_records, seed=11)]
    rates: dict[str, list[float]] = {"journal": [], "per-analysis files": [], "none": []}
    for _ in range(args.repeat):
        for how in rates:
            rates[how].append(save_rate(records, how))
    medians = {how: statistics.median(values) for how, values in rates.items()}
    for how, rate in medians.items():
        print(f"save rate, {how:<20} {rate:8,.0f} records/s  (runs: "
              f"{', '.join(f'{v:,.0f}' for v in rates[how])})")
    ratio = medians["journal"] / medians["per-analysis files"]
    print(f"journal vs per-analysis files: {ratio:.2f}x")


if __name__ == "__main__":
    main()
