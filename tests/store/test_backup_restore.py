"""Backups prove themselves: restore to any committed save, on SQLite and PostgreSQL, and
damage is named exactly while restores to before it still work."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store.backup.journal import day_path, journal_days, journal_directory, scan
from store.backup.service import Backups
from store.backup.snapshots import SQLITE_FILE, list_snapshots
from store.errors import BackupFailed
from store.schemas import AnalysisIn
from store.store import Store
from tests.conftest import make_record
from tests.support.backups import analysis_ids, drop_restored, incident_ids, save


@pytest.fixture
def restores(store: Store) -> Iterator[list[Any]]:
    """Restored stores made by a test, removed after it (PostgreSQL databases dropped)."""
    made: list[Any] = []
    yield made
    drop_restored(made)


def restore(backups: Backups, to: datetime, restores: list[Any], **options: Any) -> Any:
    report = backups.restore(to, **options)
    restores.append(report)
    return report


def test_restoring_to_each_save_gives_exactly_the_rows_committed_before_it(
        store: Store, restores: list[Any]) -> None:
    backups = Backups(store)
    marks = [save(store, "A-1", "A-2")]
    backups.now()  # a snapshot between batches: restores before it use the journal alone
    marks.append(save(store, "B-1", "A-1-again"))
    marks.append(save(store, "C-1"))
    backups.now()
    marks.append(save(store, "D-1", "D-2", "D-3"))
    expected: list[set[str]] = []
    with Store.open(store.settings, create=False) as live:
        everything = {a.analysis_id: a.created_at for i in incident_ids(live)
                      for a in live.analyses(i)}
    assert len(everything) == 8
    scanned = scan(journal_directory(store.backups))
    for mark in marks:
        expected.append({r.analysis_id for b in scanned.committed(until=mark)
                         for r in b.landed()})
    assert [len(e) for e in expected] == [2, 4, 5, 8]
    for mark, wanted in zip(marks, expected, strict=True):
        report = restore(backups, mark, restores)
        assert analysis_ids(report.settings) == wanted, mark
    before_all = restore(backups, marks[0] - timedelta(seconds=5), restores)
    assert analysis_ids(before_all.settings) == set()


def test_a_restore_never_touches_the_live_store_and_refuses_a_used_folder(
        store: Store, tmp_path: Path, restores: list[Any]) -> None:
    backups = Backups(store)
    mark = save(store, "L-1")
    backups.now()
    before = store.summary()
    if store.engine.dialect.name == "sqlite":
        occupied = tmp_path / "occupied"
        occupied.mkdir()
        (occupied / "x").write_text("mine")
        with pytest.raises(BackupFailed, match="is not empty"):
            backups.restore(mark, into=occupied)
    report = restore(backups, mark, restores)
    assert store.summary() == before
    assert analysis_ids(report.settings) == {a.analysis_id for a in store.analyses("L-1")}


def test_a_restored_store_keeps_its_index_apart_from_the_live_one(
        store: Store, restores: list[Any]) -> None:
    # Searching a restored copy builds its own index; it must never land on (and overwrite)
    # the live store's snapshot, which a PostgreSQL copy on the same server would otherwise
    # share through the live data folder.
    from store.locations import data_directory, index_directory

    backups = Backups(store)
    mark = save(store, "X-1", "X-2")
    backups.now()
    save(store, "X-3")
    store.similar(text="phishing invoice")
    store.vectors.snapshot(force=True)
    live_index = sorted((p.name, p.read_bytes()) for p in index_directory(store.settings).iterdir())
    report = restore(backups, mark, restores)
    assert data_directory(report.settings) != data_directory(store.settings)
    with Store.open(report.settings, create=False) as restored:
        assert restored.similar(text="phishing invoice").hits
        restored.vectors.snapshot(force=True)
    assert sorted((p.name, p.read_bytes())
                  for p in index_directory(store.settings).iterdir()) == live_index


def test_the_drill_passes_and_reports_recovery_time_and_point(store: Store) -> None:
    backups = Backups(store)
    save(store, "D-1", "D-2")
    backups.now()
    save(store, "D-3")
    report = backups.drill()
    assert report.ok, report.checks
    names = {name for name, _ok, _detail in report.checks}
    assert {"restore", "counts", "integrity", "alembic", "vectors", "journal sample",
            "similar"} <= names
    assert report.recovery_seconds > 0 and report.recovery_point_seconds is not None
    assert backups.status().last_drill["ok"] is True


def test_journal_and_snapshot_files_are_private(store: Store) -> None:
    backups = Backups(store)
    save(store, "P-1")
    snapshot = backups.now()
    folder = journal_directory(store.backups)
    for path in [folder, *folder.iterdir(), snapshot.path, *snapshot.path.iterdir()]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


# Damage ----------------------------------------------------------------------------------


def test_a_corrupted_snapshot_byte_is_named_and_an_earlier_time_still_restores(
        isolated_directories: Path) -> None:
    from store.settings import Settings

    restores: list[Any] = []  # SQLite: the checksum check is the same code for both
    with Store.open(Settings(data_dir=isolated_directories)) as store:
        backups = Backups(store)
        early = save(store, "E-1")
        time.sleep(0.01)
        backups.now()
        late = save(store, "E-2")
        [snapshot] = list_snapshots(store.backups)
        target = snapshot.path / SQLITE_FILE
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        with pytest.raises(BackupFailed, match=f"snapshot {snapshot.snapshot_id}: "
                           f"{SQLITE_FILE} does not match its checksum"):
            backups.restore(late)
        drill = backups.drill()
        assert not drill.ok
        assert any("does not match its checksum" in detail for _n, ok, detail in drill.checks
                   if not ok)
        report = restore(backups, early, restores)
        assert len(analysis_ids(report.settings)) == 1


def test_a_truncated_journal_line_is_named_and_earlier_times_restore(
        store: Store, restores: list[Any]) -> None:
    first = save(store, "T-1")
    time.sleep(0.01)
    second = save(store, "T-2")
    path = day_path(journal_directory(store.backups), journal_days(
        journal_directory(store.backups))[-1])
    lines = path.read_bytes().splitlines(keepends=True)
    record_lines = [n for n, line in enumerate(lines) if b'"kind":"record"' in line]
    last_record = record_lines[-1]
    lines[last_record] = lines[last_record][: len(lines[last_record]) // 2] + b"\n"
    path.write_bytes(b"".join(lines))
    backups = Backups(store)
    with pytest.raises(BackupFailed, match=rf"{path.name} line {last_record + 1}: no checksum"):
        backups.restore(second)
    report = restore(backups, first, restores)
    assert len(analysis_ids(report.settings)) == 1


def test_a_missing_journal_day_is_named(store: Store, restores: list[Any]) -> None:
    folder = journal_directory(store.backups)
    save(store, "M-1")
    today = journal_days(folder)[-1]
    yesterday = today - timedelta(days=1)
    os.replace(day_path(folder, today), day_path(folder, yesterday))
    tomorrow_mark = datetime.now(UTC) + timedelta(days=1)
    # A new day file started after yesterday's names it as the day before it.
    store.journal.begin([], at=tomorrow_mark)
    os.unlink(day_path(folder, yesterday))
    with pytest.raises(BackupFailed, match=rf"{yesterday.isoformat()}.jsonl: the day file is "
                       "missing"):
        Backups(store).restore(tomorrow_mark)
    report = restore(Backups(store), datetime.combine(yesterday, datetime.min.time(), UTC)
                     - timedelta(seconds=1), restores)
    assert analysis_ids(report.settings) == set()


# Retention and run-due ------------------------------------------------------------------


def test_run_due_is_idempotent_and_prune_keeps_the_newest_per_day(store: Store) -> None:
    backups = Backups(store)
    save(store, "R-1")
    first = backups.run_due(keep_daily=2, keep_weekly=1)
    assert any(line.startswith("snapshot") for line in first)
    assert any(line.startswith("drill passed") for line in first)
    assert backups.run_due(keep_daily=2, keep_weekly=1) == []
    for _ in range(2):
        backups.now()
    # Three snapshots today: one day's worth is kept (the newest).
    removed = backups.prune(keep_daily=2, keep_weekly=1)
    assert len(removed) == 2
    assert len([s for s in list_snapshots(store.backups) if s.good]) == 1


def test_run_due_purges_past_retention_before_the_days_snapshot(store: Store,
                                                                settings: Any) -> None:
    old = make_record("OLD-1")
    old["usage"]["start_time"] = "2025-01-01T00:00:00Z"
    old["usage"]["end_time"] = "2025-01-01T00:00:01Z"
    store.save_analysis(AnalysisIn.model_validate(old))
    save(store, "NEW-1")
    store.add_user("rita", "lead", [])  # maintains the store, may not purge
    policy = settings.model_copy(update={"retention_days": 90})
    with Store.open(policy, actor="rita") as lead:
        assert Backups(lead).run_due(7, 4)[0] == (
            "retention purge due for 1 incidents: it needs a lead or admin with the purge "
            "permission (`incidex purge`)")
        assert lead.incident("OLD-1") is not None
    with Store.open(policy) as admin:
        backups = Backups(admin)
        done = backups.run_due(7, 4, now=datetime.now(UTC) + timedelta(days=1))
        assert done[0] == "retention purge: 1 incidents past their retention removed"
        assert admin.incident("OLD-1") is None and admin.incident("NEW-1") is not None
        assert all("retention" not in line for line in backups.run_due(7, 4))


def test_losing_the_primary_backup_folder_loses_nothing_with_a_mirror(
        settings: Any, tmp_path: Path, restores: list[Any]) -> None:
    import shutil

    mirror = tmp_path / "mirror"
    mirrored = settings.model_copy(update={"backup_mirrors": (mirror,)})
    with Store.open(mirrored) as store:
        backups = Backups(store)
        save(store, "MIR-1", "MIR-2")
        snapshot = backups.now()
        assert backups.copies(snapshot) == [mirror.resolve()]
        last = save(store, "MIR-3")  # after the snapshot: only the journal has it
        wanted = {a.analysis_id for i in ("MIR-1", "MIR-2", "MIR-3")
                  for a in store.analyses(i)}
        shutil.rmtree(store.backups)
        report = restore(backups, last, restores, source=mirror)
        assert analysis_ids(report.settings) == wanted
        assert report.snapshot_id == snapshot.snapshot_id
        drill = backups.drill(source=mirror)
        assert drill.ok, drill.checks


def test_restore_in_place_rewinds_the_live_sqlite_store_and_keeps_the_old_one(
        isolated_directories: Path) -> None:
    from store.settings import Settings

    settings = Settings(data_dir=isolated_directories)
    with Store.open(settings) as store:
        first = save(store, "IP-1")
        save(store, "IP-2")
        report, kept = Backups(store).restore_in_place(first)
    assert kept.exists() and report.records_replayed == 1
    with Store.open(settings, create=False) as rewound:
        assert [r.incident_id for r in rewound.incidents_page().rows] == ["IP-1"]
        assert rewound.verify_vectors().in_step
        assert len(list_snapshots(rewound.backups)) == 1  # taken at once after the rewind
        save(rewound, "IP-3")
        assert rewound.summary().analyses == 2


def test_damage_before_the_snapshot_does_not_block_a_later_restore_but_fails_the_drill(
        store: Store, restores: list[Any]) -> None:
    from store.backup.entries import journal_body
    from store.ingest.records import Limits, prepare

    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    old = prepare(AnalysisIn.model_validate(make_record("OLD-1")), "old", Limits(), hour_ago)
    store.journal.append_settled([journal_body(old, hour_ago)], hour_ago)
    folder = journal_directory(store.backups)
    path = day_path(folder, journal_days(folder)[-1])
    lines = path.read_bytes().splitlines(keepends=True)
    [record] = [n for n, line in enumerate(lines) if b'"kind":"record"' in line]
    # One changed byte (its checksum: the body may be sealed, so no clear word to change).
    lines[record] = lines[record].replace(b'"sum":"', b'"sum":"0')
    path.write_bytes(b"".join(lines))
    backups = Backups(store)
    save(store, "MID-1")
    backups.now()
    later = save(store, "NEW-1")
    report = restore(backups, later, restores)
    assert len(analysis_ids(report.settings)) == 2
    drill = backups.drill()
    assert not drill.ok
    failed = {n: d for n, ok, d in drill.checks if not ok}
    assert f"{path.name} line {record + 1}" in failed["journal"]
    assert set(failed) <= {"journal", "restore warning"}
