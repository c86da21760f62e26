"""`Backups`: the verbs behind `incidex backup` (now, list, restore, drill, run-due, fold)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.access import Action
from store.backup.codec import Codec, PlainCodec
from store.backup.drill import DrillReport, last_drills, run_drill
from store.backup.journal import (
    PRUNED_MARKER,
    day_path,
    first_line_time,
    journal_days,
    journal_directory,
    parse_time,
    pruned_before,
    resolve_forgets,
    resolve_unfinished,
    scan,
)
from store.backup.legacy import FoldReport, fold_legacy_files, legacy_files
from store.backup.mirrors import bucket_mirrors, catch_up, has_copy, mirror_directories
from store.backup.pg_wal import (
    WalRestoreReport,
    archive_summary,
    base_backup_method,
    choose_wal_snapshot,
    close_segment,
    restore_by_wal,
)
from store.backup.restore import RestoreReport, restore_to, sweep_partial_databases
from store.backup.s3 import S3Mirror, is_s3
from store.backup.snapshots import Snapshot, delete_snapshot, list_snapshots, take_snapshot
from store.db.engine import sqlite_path
from store.errors import BackupFailed
from store.fileio import write_private_file

if TYPE_CHECKING:
    from store.store import Store

DRILL_EVERY = timedelta(days=7)
# Unfinished batches are looked for this far back when a backup settles them.
SETTLE_DAYS = 3


@dataclass(frozen=True, slots=True)
class JournalFile:
    """One day of the journal."""

    day: date
    path: Path
    size: int


@dataclass(slots=True)
class BackupStatus:
    """What `backup list` shows."""

    snapshots: list[Snapshot]
    journal: list[JournalFile]
    oldest_restorable: datetime | None
    last_drill: dict[str, Any] | None
    legacy_files: int
    warnings: list[str] = field(default_factory=list)

    @property
    def last_good_snapshot(self) -> Snapshot | None:
        """The newest snapshot whose manifest and files are in place."""
        good = [s for s in self.snapshots if s.good]
        return good[-1] if good else None


class Backups:
    """Snapshots, the journal, restores and drills of one open store.

    Each verb checks the actor's role and leaves one audit event (a short detail, never
    incident text): a snapshot or run-due needs `maintain` (lead, admin), a restore or a drill
    `restore` (admin), since a restored copy holds every incident's text."""

    def __init__(self, store: Store, codec: Codec | None = None) -> None:
        self.store = store
        self.codec: Codec = codec or PlainCodec()
        store.journal.codec = self.codec
        self.mirror_problems: list[str] = []
        self._buckets: list[S3Mirror] | None = None

    @property
    def directory(self) -> Path:
        """The backups folder (`DATA_DIR/backups`)."""
        return self.store.backups

    def settle_journal(self) -> int:
        """Settle batches a killed writer left without a commit line (from the database), and
        journal the recent tombstones a killed purge left without forget lines."""
        since = datetime.now(UTC).date() - timedelta(days=SETTLE_DAYS)
        settled = resolve_unfinished(self.store.journal, self.store.stored_analysis_ids, since)
        start = datetime.combine(since, datetime.min.time(), UTC)
        resolve_forgets(self.store.journal, self.store.tombstones_since(start), since)
        return settled

    def now(self) -> Snapshot:
        """Take a snapshot now (after settling the journal and folding legacy files), then
        bring every mirror up to date (problems land in `mirror_problems`)."""
        self.store.require(Action.MAINTAIN)
        snapshot = self._snapshot()
        self.store.record_event("backup_now", detail=f"snapshot {snapshot.snapshot_id}")
        return snapshot

    def _snapshot(self) -> Snapshot:
        self.fold_legacy()
        self.settle_journal()
        snapshot = take_snapshot(self.store, self.codec,
                                 base_backup_method(self.store, self.codec))
        self.mirror_problems = self._copy_to_mirrors()
        return snapshot

    def sync(self) -> list[str]:
        """Bring every mirror (folders and buckets) up to date with the primary folder,
        without a snapshot; a problem per mirror that could not be."""
        self.store.require(Action.MAINTAIN)
        self.settle_journal()
        self.mirror_problems = self._copy_to_mirrors()
        self.store.record_event("backup_sync", detail="mirrors brought up to date"
                                + (f", {len(self.mirror_problems)} failed"
                                   if self.mirror_problems else ""))
        return self.mirror_problems

    def _copy_to_mirrors(self) -> list[str]:
        problems = catch_up(self.directory, self.mirrors)
        for bucket in self.buckets:
            try:
                bucket.push(self.directory)
            except (BackupFailed, OSError) as error:
                problems.append(f"mirror {bucket}: {error}")
            except Exception as error:  # noqa: BLE001 - boto3's errors: one line, not a trace
                problems.append(f"mirror {bucket}: {type(error).__name__}: {error}")
        return problems

    @property
    def mirrors(self) -> list[Path]:
        """The mirrors' backups folders (INCIDEX_BACKUP_MIRRORS)."""
        return mirror_directories(self.store.settings)

    @property
    def buckets(self) -> list[S3Mirror]:
        """The S3-compatible bucket mirrors (s3:// in INCIDEX_BACKUP_MIRRORS)."""
        if self._buckets is None:
            self._buckets = bucket_mirrors(self.store.settings)
        return self._buckets

    def copies(self, snapshot: Snapshot) -> list[Path | S3Mirror]:
        """The mirrors that hold a whole copy of the snapshot."""
        held: list[Path | S3Mirror] = [m for m in self.mirrors if has_copy(m, snapshot)]
        return held + [b for b in self.buckets if _safely(lambda b=b: b.has_snapshot(snapshot))]

    def journal_copies(self, path: Path) -> list[Path | S3Mirror]:
        """The mirrors that hold this journal day file as it is now (its size)."""
        held: list[Path | S3Mirror] = [
            m for m in self.mirrors if _same_size(journal_directory(m) / path.name, path)]
        return held + [b for b in self.buckets if _safely(lambda b=b: b.has_journal_day(path))]

    def _fetched(self, source: Path | str | None, to: datetime | None,
                 scratch: Path) -> Path | None:
        """A backups folder to read: the primary (None), a mirror folder, or a bucket's
        objects fetched into scratch (checked against their checksums)."""
        if source is None or not is_s3(source):
            return None if source is None else Path(source)
        bucket = S3Mirror.parse(str(source), self.store.settings.backup_s3_endpoint)
        try:
            return bucket.fetch(scratch / "backups", to)
        except BackupFailed:
            raise
        except Exception as error:  # noqa: BLE001 - boto3's errors: one line, not a trace
            raise BackupFailed(f"backup mirror {bucket}: {type(error).__name__}: "
                               f"{error}") from None

    def fold_legacy(self) -> FoldReport:
        """Fold per-analysis JSON backups of earlier versions into the journal (resumable)."""
        return fold_legacy_files(self.directory, self.store.journal)

    def status(self) -> BackupStatus:
        """Snapshots, journal days with sizes, the oldest restorable time, the last drill."""
        snapshots = list_snapshots(self.directory)
        folder = journal_directory(self.directory)
        journal = [JournalFile(day, day_path(folder, day), day_path(folder, day).stat().st_size)
                   for day in journal_days(folder)]
        drills = last_drills(self.directory)
        status = BackupStatus(snapshots, journal, self._oldest_restorable(snapshots, journal),
                              drills[-1] if drills else None,
                              sum(1 for _ in legacy_files(self.directory)))
        status.warnings = [str(s.problem) for s in snapshots if not s.good]
        return status

    def _oldest_restorable(self, snapshots: list[Snapshot], journal: list[JournalFile]
                           ) -> datetime | None:
        good = [s for s in snapshots if s.good]
        horizon = pruned_before(journal_directory(self.directory))
        if horizon is None and journal:
            return first_line_time(journal[0].path)
        return good[0].taken_at if good else None

    def archive_summary(self, snapshots: list[Snapshot]) -> str | None:
        """The WAL archive behind the base backups, in one line (None if there are none)."""
        configured = self.store.settings.backup_pg_wal_dir
        return archive_summary(snapshots, Path(configured) if configured else None)

    def restore(self, to: datetime, into: str | Path | None = None,
                source: Path | str | None = None) -> RestoreReport:
        """Restore the store as of `to` into a new directory or database (never the live);
        `source`: a mirror folder or bucket instead of the primary folder."""
        self.store.require(Action.RESTORE)
        with tempfile.TemporaryDirectory(prefix="incidex-fetch-") as scratch:
            report = self._restore(to, into, self._fetched(source, to, Path(scratch)))
        self.store.record_event("backup_restore", detail=f"to {to.isoformat()}, snapshot "
                                f"{report.snapshot_id or 'none'}, "
                                f"{report.records_replayed} records replayed")
        return report

    def _restore(self, to: datetime, into: str | Path | None = None,
                 source: Path | None = None) -> RestoreReport:
        if source is None:
            self.settle_journal()
        snapshot = choose_wal_snapshot(source or self.directory, to.astimezone(UTC))
        if snapshot is not None:
            return self._restore_by_wal(snapshot, to, into)
        return restore_to(self.store.settings, self.codec, to, into, type(self.store).open,
                          source=source, sealer=self.store.journal.sealer)

    def _restore_by_wal(self, snapshot: Snapshot, to: datetime,
                        into: str | Path | None) -> RestoreReport:
        """A base backup plus the WAL archive replayed to `to` (the live server is asked to
        archive its current segment first, so the archive reaches past `to`)."""
        configured = self.store.settings.backup_pg_wal_dir
        archive = Path(configured) if configured else Path(snapshot.manifest["wal"]["archive"])
        mark = None
        if self.store.engine.dialect.name == "postgresql" and archive.is_dir():
            mark = close_segment(self.store.engine, archive)
        if configured:
            snapshot = replace(snapshot, manifest={
                **snapshot.manifest, "wal": {**snapshot.manifest["wal"],
                                             "archive": str(archive)}})
        return restore_by_wal(self.store.settings, self.codec, snapshot, to, into,
                              type(self.store).open, mark,
                              self.store.settings.backup_pg_server_user)

    def restore_in_place(self, to: datetime) -> tuple[RestoreReport, Path]:
        """Replace the live SQLite database with its state at `to`; the previous database is
        kept beside it (its path is returned) and a snapshot of the result is taken at once,
        so later restores start from the rewound store, not from batches it left out."""
        live = sqlite_path(str(self.store.engine.url))
        if live is None:
            raise BackupFailed("restore --in-place works on SQLite stores; restore into a new "
                               "database (--into NAME) and point INCIDEX_DATABASE_URL at it")
        self.store.require(Action.RESTORE)
        report = self._restore(to)
        restored = Path(report.target)
        kept = live.with_name(f"{live.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        _checkpoint(live)
        self.store.engine.dispose()
        os.replace(live, kept)
        for suffix in ("-wal", "-shm"):
            live.with_name(live.name + suffix).unlink(missing_ok=True)
        os.replace(restored / live.name, live)
        _move_index(restored, self.store.settings)
        shutil.rmtree(restored, ignore_errors=True)
        take_snapshot(self.store, self.codec)
        self.store.record_event("backup_restore", detail=f"in place to {to.isoformat()}, "
                                f"{report.records_replayed} records replayed")
        return report, kept

    def drill(self, source: Path | str | None = None) -> DrillReport:
        """Restore the latest backup into scratch and check it (see drill.py); `source`: a
        mirror folder or bucket."""
        self.store.require(Action.RESTORE)
        with tempfile.TemporaryDirectory(prefix="incidex-fetch-") as scratch:
            report = self._drill(self._fetched(source, None, Path(scratch)))
        self.store.record_event("backup_drill",
                                detail=_drill_detail(report))
        return report

    def _drill(self, source: Path | None = None) -> DrillReport:
        self.settle_journal()
        return run_drill(self.store, self.codec, source,
                         restore=lambda to, into: self._drill_restore(to, into, source))

    def _drill_restore(self, to: datetime, into: str | Path, source: Path | None
                       ) -> RestoreReport:
        """The drill's restore: by WAL when the newest snapshot is a base backup; then to
        now, with the live counts read before and after it to compare with."""
        if choose_wal_snapshot(source or self.directory, to) is None:
            return self._restore(to, into, source)
        before = self._live_counts()
        report = self._restore(datetime.now(UTC), into, source)
        if isinstance(report, WalRestoreReport):
            report.counts_between = (before, self._live_counts())
            # The journal's batches committed by then: the drill samples them in the copy.
            found = scan(journal_directory(source or self.directory), self.codec,
                         sealer=self.store.journal.sealer)
            report.replayed = found.committed(until=report.to)
        return report

    def _live_counts(self) -> dict[str, int]:
        from sqlalchemy import text

        from store.backup.snapshots import describe

        with self.store.engine.connect() as connection:
            return dict(describe(lambda sql: connection.execute(text(sql)).one())["counts"])

    def due(self, now: datetime | None = None) -> bool:
        """Whether `run_due` would snapshot or drill now, for what this actor may do (a
        cheap look at the folder, for the TUI to decide whether to start it)."""
        now = now or datetime.now(UTC)
        actor = self.store.actor
        return (actor.may(Action.MAINTAIN) and self._snapshot_due(now)) or (
            actor.may(Action.RESTORE) and self._drill_due(now))

    def _snapshot_due(self, now: datetime) -> bool:
        snapshots = [s for s in list_snapshots(self.directory) if s.good]
        return not snapshots or snapshots[-1].taken_at.date() < now.date()

    def run_due(self, keep_daily: int, keep_weekly: int,
                now: datetime | None = None) -> list[str]:
        """Do what is due, idempotently: fold legacy files, the data retention purge (when a
        policy is set, only for an actor holding the purge permission), a snapshot if none
        today, the backup retention prune, a drill if none passed in a week (only for an
        actor who may restore); what was done, one line each."""
        self.store.require(Action.MAINTAIN)
        now = now or datetime.now(UTC)
        done: list[str] = []
        folded = self.fold_legacy()
        if folded.folded:
            done.append(f"folded {folded.folded} legacy backup files into the journal")
        purged = self._due_purge(now)
        if purged:
            done.append(purged)
        if self._snapshot_due(now):
            snapshot = self._snapshot()
            done.append(f"snapshot {snapshot.snapshot_id} taken")
        else:
            self.settle_journal()
            self.mirror_problems = self._copy_to_mirrors()
        done += [f"{problem} (kept in the primary folder)" for problem in self.mirror_problems]
        removed = self.prune(keep_daily, keep_weekly)
        if removed:
            done.append(f"pruned {len(removed)} old snapshots: {', '.join(removed)}")
        if self.store.engine.dialect.name == "postgresql":
            swept = sweep_partial_databases(self.store.settings)
            if swept:
                done.append(f"dropped {len(swept)} copies left by killed restores or drills: "
                            + ", ".join(swept))
        if self._drill_due(now):
            done.append(self._due_drill())
        self.store.record_event("backup_run_due", detail="; ".join(done) or "nothing due")
        return done

    def _due_purge(self, now: datetime) -> str | None:
        """The data retention purge, before the day's snapshot so that the snapshot holds no
        incident past its retention."""
        settings = self.store.settings
        if settings.retention_days is None and not settings.retention_days_by_severity:
            return None
        due = self.store.purge_candidates(now)
        if not due:
            return None
        if not self.store.actor.may(Action.PURGE):
            return (f"retention purge due for {len(due)} incidents: it needs a lead or admin "
                    "with the purge permission (`incidex purge`)")
        report = self.store.forget([c.incident_id for c in due], reason="retention")
        return f"retention purge: {report.incidents} incidents past their retention removed"

    def _due_drill(self) -> str:
        if not self.store.actor.may(Action.RESTORE):
            return "drill due: it needs an admin (`incidex backup drill`)"
        report = self._drill()
        return (f"drill {'passed' if report.ok else 'FAILED'} in "
                f"{report.recovery_seconds:.1f} s")

    def _drill_due(self, now: datetime) -> bool:
        passed = [d for d in last_drills(self.directory) if d.get("ok")]
        return not passed or parse_time(passed[-1]["started_at"]) <= now - DRILL_EVERY

    def prune(self, keep_daily: int, keep_weekly: int) -> list[str]:
        """Keep the newest snapshot of each of the last `keep_daily` days and of the last
        `keep_weekly` ISO weeks (and always the newest); delete the other snapshots and the
        journal days older than every kept snapshot."""
        good = [s for s in list_snapshots(self.directory) if s.good]
        if not good:
            return []
        keep = {good[-1].snapshot_id}
        keep |= _newest_per(good, lambda s: s.taken_at.date(), keep_daily)
        keep |= _newest_per(good, lambda s: tuple(s.taken_at.isocalendar())[:2], keep_weekly)
        removed = []
        for snapshot in good:
            if snapshot.snapshot_id not in keep:
                delete_snapshot(snapshot)
                removed.append(snapshot.snapshot_id)
        oldest_kept = min(s.started_at for s in good if s.snapshot_id in keep)
        self._prune_journal((oldest_kept - timedelta(days=1)).date())
        return removed

    def _prune_journal(self, before: date) -> None:
        folder = journal_directory(self.directory)
        doomed = [day for day in journal_days(folder) if day < before]
        if not doomed:
            return
        write_private_file(folder / PRUNED_MARKER, before.isoformat().encode())
        for day in doomed:
            day_path(folder, day).unlink(missing_ok=True)


def _safely(check: Any) -> bool:
    """A mirror's answer, False when it cannot be asked (a bucket that does not answer)."""
    try:
        return bool(check())
    except Exception:  # noqa: BLE001 - `backup list` shows what it can
        return False


def _same_size(copy: Path, original: Path) -> bool:
    try:
        return copy.stat().st_size == original.stat().st_size
    except FileNotFoundError:
        return False


def _drill_detail(report: DrillReport) -> str:
    failed = [name for name, passed, _detail in report.checks if not passed]
    verdict = "passed" if report.ok else "failed: " + ", ".join(failed)
    return f"{verdict}; recovery time {report.recovery_seconds:.1f} s"


def _checkpoint(database: Path) -> None:
    connection = sqlite3.connect(database, timeout=30)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _move_index(restored: Path, settings: Any) -> None:
    """The restored index snapshot replaces the live one (a cache: rebuilt if it is absent)."""
    from store.locations import index_directory
    from store.vectors.index import SNAPSHOT_FILE

    target = index_directory(settings) / SNAPSHOT_FILE
    source = restored / "index" / SNAPSHOT_FILE
    if source.exists():
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(source, target)
    else:
        target.unlink(missing_ok=True)


def _newest_per(snapshots: list[Snapshot], bucket: Any, count: int) -> set[str]:
    newest: dict[Any, Snapshot] = {}
    for snapshot in snapshots:
        newest[bucket(snapshot)] = snapshot
    buckets = sorted(newest)[-count:] if count > 0 else []
    return {newest[b].snapshot_id for b in buckets}


def schedule_units(data_dir: Path, hour: int = 3) -> dict[str, str]:
    """A systemd service and timer, and a cron line, that run `incidex backup run-due`."""
    program = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else Path("incidex")
    if program.name != "incidex":
        program = Path(os.environ.get("INCIDEX_PROGRAM", "incidex"))
    command = f"{program} --data-dir {data_dir} backup run-due"
    service = ("[Unit]\nDescription=incidex backups (snapshot, retention, weekly drill)\n\n"
               f"[Service]\nType=oneshot\nExecStart={command}\nNice=10\n"
               "IOSchedulingClass=idle\n")
    timer = ("[Unit]\nDescription=Run incidex backup run-due daily\n\n"
             f"[Timer]\nOnCalendar=*-*-* {hour:02d}:17:00\nPersistent=true\n"
             "RandomizedDelaySec=600\n\n[Install]\nWantedBy=timers.target\n")
    cron = f"17 {hour} * * * {command} >> {data_dir}/backups/run-due.log 2>&1"
    return {"incidex-backup.service": service, "incidex-backup.timer": timer, "cron": cron}
