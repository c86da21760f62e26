"""Restoring the store as of a time: the newest snapshot before it, then the journal replayed.

A restore is built under a temp name (a `.tmp-<pid>-` folder beside the target, or a
`<name>_partial` database) and given its name only when complete: a killed restore leaves no
store that looks finished, and never touches the live one. Replay is idempotent (an analysis
already present is a duplicate), so batches around the snapshot's consistent point may be
replayed twice without effect; a batch counts as of its commit line's time.

Invariants: a restore to T holds every analysis whose batch's commit line is dated at or
before T and no other journaled one; damage (a bad line, a missing day, a snapshot byte that
does not match its checksum) that a restore to T would need makes it fail, naming the file,
line and fault; damage only later than T does not matter to it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.backup.codec import BodySealer, Codec, codec_named
from store.backup.entries import prepared_from_body, replay_entry
from store.backup.frames import unpack_frames
from store.backup.journal import (
    ANALYSIS_ENTRY,
    ForgetMark,
    JournalBatch,
    JournalScan,
    iso,
    journal_directory,
    pruned_before,
    scan,
)
from store.backup.snapshots import (
    INDEX_FILE,
    PG_FILE,
    SQLITE_FILE,
    Snapshot,
    describe,
    list_snapshots,
    run_pg_tool,
    verify_snapshot,
)
from store.errors import BackupFailed, BodyForgotten, RecordError
from store.fileio import private_directory
from store.locations import backups_directory, data_directory, database_url

if TYPE_CHECKING:
    from store.settings import Settings
    from store.store import Store

# How long after a batch's commit its commit line may be dated (a writer delayed between the
# two, or a batch settled later by resolve_unfinished is dated at its record lines): batches
# committed this long before a snapshot started are replayed again, harmlessly.
REPLAY_SLACK = timedelta(minutes=10)
REPLAY_CHUNK = 500
DATABASE_FILE = "incident_analysis.db"


@dataclass(slots=True)
class RestoreReport:
    """What a restore did and where the restored store is."""

    to: datetime
    settings: Settings
    target: str
    snapshot_id: str | None
    snapshot_counts: dict[str, int] | None = None
    manifest_counts: dict[str, int] | None = None
    replayed: list[JournalBatch] = field(default_factory=list)
    records_replayed: int = 0
    records_present: int = 0
    # Journal records skipped because their incident was forgotten (its data key deleted).
    records_forgotten: int = 0
    # Entries other than analyses replayed (incidents added, usage rows, restrictions).
    entries_replayed: int = 0
    # Incidents erased again because the journal says they were forgotten before the time.
    incidents_forgotten: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    newest_point: datetime | None = None


def restore_to(settings: Settings, codec: Codec, to: datetime, into: str | Path | None,
               open_store: Callable[[Settings], Store], *, source: Path | None = None,
               sealer: BodySealer | None = None) -> RestoreReport:
    """Restore the store of `settings` as of `to` into a new directory (SQLite) or database
    (PostgreSQL), opening it with `open_store`; `source` is a backups folder other than the
    store's (a mirror); sealed journal bodies are opened with `sealer` (the keyring), and
    those of forgotten incidents are skipped and counted."""
    started = time.monotonic()
    to = to.astimezone(UTC)
    backups = source or backups_directory(settings)
    snapshot = choose_snapshot(backups, to)
    journal = journal_directory(backups)
    if snapshot is None and pruned_before(journal) is not None:
        raise BackupFailed(f"restore to {iso(to)}: no snapshot was taken before it and the "
                           f"journal before {pruned_before(journal)} was pruned "
                           "(see `incidex backup list` for the oldest restorable time)")
    replay_after = None if snapshot is None else snapshot.started_at - REPLAY_SLACK
    journal_scan = scan(journal, codec,
                        since=None if replay_after is None else replay_after.date()
                        - timedelta(days=1),
                        until=to.date(), sealer=sealer)
    damage = journal_scan.damage_between(replay_after, to)
    if damage:
        raise BackupFailed(f"restore to {iso(to)}: " + "; ".join(str(d) for d in damage))
    batches = journal_scan.committed(after=replay_after, until=to)
    forgets = journal_scan.forgets_between(replay_after, to)
    kind = "sqlite" if snapshot is None else snapshot.manifest["kind"]
    if snapshot is None:
        kind = "postgresql" if database_url(settings).startswith("postgres") else "sqlite"
    restorer = _SqliteTarget(settings, into, to) if kind == "sqlite" else _PostgresTarget(
        settings, into, to)
    if isinstance(restorer, _PostgresTarget):
        sweep_partial_databases(settings)
    report = RestoreReport(to, settings, restorer.final_name,
                           None if snapshot is None else snapshot.snapshot_id)
    report.warnings += _unfinished_warnings(journal_scan, to) + journal_scan.notes
    report.newest_point = max([b.committed_at for b in batches if b.committed_at] +
                              ([snapshot.taken_at] if snapshot else []), default=None)
    try:
        try:
            restored_settings = restorer.prepare(snapshot, codec, report)
        except ValueError as error:  # a codec that cannot read it, a damaged frame
            raise BackupFailed(f"restore to {iso(to)}: snapshot "
                               f"{snapshot.snapshot_id if snapshot else '-'}: {error}") from None
        report.settings = restored_settings
        with open_store(restored_settings) as restored:
            replay(restored, batches, report, forgets, index=kind == "sqlite")
        restorer.finish()
    except BaseException:
        restorer.discard()
        raise
    report.settings = restorer.final_settings()
    report.replayed = batches
    report.seconds = time.monotonic() - started
    return report


def choose_snapshot(backups: Path, to: datetime) -> Snapshot | None:
    """The newest snapshot taken before `to`; BackupFailed naming the fault if it is damaged."""
    candidates = [s for s in list_snapshots(backups) if s.manifest or s.problem]
    usable = [s for s in candidates if s.manifest and s.taken_at <= to]
    broken_newer = [s for s in candidates if not s.manifest]
    if not usable:
        if broken_newer:
            raise BackupFailed(f"restore to {iso(to)}: " + "; ".join(
                str(s.problem) for s in broken_newer))
        return None
    newest = usable[-1]
    problem = verify_snapshot(newest)
    if problem is not None:
        raise BackupFailed(f"restore to {iso(to)}: {problem}; a restore to before "
                           f"{newest.manifest['taken_at']} uses an older snapshot")
    return newest


def _unfinished_warnings(journal_scan: JournalScan, to: datetime) -> list[str]:
    return [f"journal batch {b.batch_id} ({len(b.records)} records written {iso(b.intent_at)}) "
            "has no commit line: its writer died before committing or before settling it; not "
            "replayed" for b in journal_scan.unfinished() if b.intent_at <= to]


def replay(store: Store, batches: list[JournalBatch], report: RestoreReport,
           forgets: list[ForgetMark] | None = None, *, index: bool = False) -> None:
    """Write the batches' committed records and apply the forgets, all in time order
    (analyses in chunks of whole batches); `index`: the restored store's vector index
    snapshot is its own (SQLite), so forgotten vectors are taken out of it too."""
    from store.db.writes import write_batch

    chunk: list[Any] = []
    keyed_hash = store.cipher.index.keyed_hash if store.cipher.sealing else None
    hashes: dict[str, str] = {}  # each incident id hashed once, however many forget runs
    for item in _timeline(batches, forgets or []):
        if isinstance(item, list):
            if chunk:
                _write_chunk(store, chunk, report, write_batch)
                chunk = []
            report.incidents_forgotten += store.erase_forgotten(item, index=index,
                                                                hashes=hashes)
            continue
        for record in item.landed():
            try:
                body = record.body
                if record.entry != ANALYSIS_ENTRY:
                    if chunk:
                        _write_chunk(store, chunk, report, write_batch)
                        chunk = []
                    report.entries_replayed += replay_entry(
                        store.engine, record.entry, body, f"journal {record.where}")
                    continue
                chunk.append(prepared_from_body(body, f"journal {record.where}", keyed_hash))
            except BodyForgotten:
                report.records_forgotten += 1
            except (RecordError, ValueError) as error:
                raise BackupFailed(f"restore: {error}") from None
        if len(chunk) >= REPLAY_CHUNK:
            _write_chunk(store, chunk, report, write_batch)
            chunk = []
    if chunk:
        _write_chunk(store, chunk, report, write_batch)


def _timeline(batches: list[JournalBatch], forgets: list[ForgetMark]
              ) -> Iterator[JournalBatch | list[ForgetMark]]:
    """Batches and runs of consecutive forgets, merged by time (a batch committed at the
    very instant of a forget goes first: it committed before the purge read its rows)."""
    pending = list(forgets)
    for batch in batches:
        assert batch.committed_at is not None
        due = [m for m in pending if m.at < batch.committed_at]
        if due:
            yield due
            pending = pending[len(due):]
        yield batch
    if pending:
        yield pending


def _write_chunk(store: Store, chunk: list[Any], report: RestoreReport,
                 write_batch: Callable[..., Any]) -> None:
    if store.cipher.sealing:
        store.cipher.seal_batch(chunk)
    runs = store.vectors.attach_vectors(chunk)
    written = write_batch(store.engine, chunk, runs)
    failures = [r.error for r in written if r.status == "error"]
    if failures:
        raise BackupFailed(f"restore: replay refused: {failures[0]}")
    store.vectors.added([(r.pk, p) for r, p in zip(written, chunk, strict=True)
                         if r.status == "saved" and r.pk is not None])
    report.records_replayed += sum(r.status == "saved" for r in written)
    report.records_present += sum(r.status == "duplicate" for r in written)


def restore_stamp(to: datetime) -> str:
    """A folder or database name part for a restore to `to`."""
    return to.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:4]


class _SqliteTarget:
    """A restored SQLite store in a new data directory (built under a temp name)."""

    def __init__(self, settings: Settings, into: str | Path | None, to: datetime) -> None:
        self.settings = settings
        default = data_directory(settings) / "restores" / restore_stamp(to)
        self.target = Path(into).expanduser().resolve() if into else default
        if self.target.exists() and any(self.target.iterdir()):
            raise BackupFailed(f"restore: {self.target} is not empty (give a new --into)")
        self.work = self.target.parent / f".tmp-{os.getpid()}-{self.target.name}"
        self.final_name = str(self.target)

    def prepare(self, snapshot: Snapshot | None, codec: Codec, report: RestoreReport
                ) -> Settings:
        private_directory(self.work)
        if snapshot is not None:
            codec = codec_named(snapshot.manifest["codec"], codec)
            database = self.work / DATABASE_FILE
            plain = unpack_frames(snapshot.path / SQLITE_FILE, database, codec)
            if plain != snapshot.manifest["files"][SQLITE_FILE]["plain_sha256"]:
                raise BackupFailed(f"snapshot {snapshot.snapshot_id}: the database does not "
                                   "match its checksum once unpacked")
            report.snapshot_counts = _sqlite_counts(database)
            report.manifest_counts = snapshot.manifest["counts"]
            if (snapshot.path / INDEX_FILE).exists():
                index = private_directory(self.work / "index")
                from store.vectors.index import SNAPSHOT_FILE

                unpack_frames(snapshot.path / INDEX_FILE, index / SNAPSHOT_FILE, codec)
        return self._settings(self.work)

    def _settings(self, directory: Path) -> Settings:
        return self.settings.model_copy(update={"data_dir": directory, "database_url": None,
                                                "redis_url": None})

    def finish(self) -> None:
        if self.target.exists():
            self.target.rmdir()
        private_directory(self.target.parent)
        os.replace(self.work, self.target)

    def discard(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def final_settings(self) -> Settings:
        return self._settings(self.target)


def _sqlite_counts(database: Path) -> dict[str, int]:
    connection = sqlite3.connect(database)
    try:
        return dict(describe(lambda sql: connection.execute(sql).fetchone())["counts"])
    finally:
        connection.close()


PARTIAL_COMMENT = "incidex partial restore of "
PARTIAL_SUFFIX = "_partial"
DRILL_PREFIX = "incidex_drill_"
DRILL_COMMENT = "incidex drill copy of "


def _lock_key(work_name: str) -> str:
    return f"incidex-restore:{work_name}"


def drill_lock_key(name: str) -> str:
    """The advisory lock a drill holds on its scratch database for as long as it runs."""
    return f"incidex-drill:{name}"


class _PostgresTarget:
    """A restored PostgreSQL store in a new database on the same server.

    The work copy `<name>_partial` carries a comment naming the live database, and its
    restore holds a session advisory lock named after it until it is renamed or dropped: a
    restore killed with -9 loses its session and so its lock, and the next restore, drill or
    run-due against the same database drops the copy (sweep_partial_databases)."""

    def __init__(self, settings: Settings, into: str | Path | None, to: datetime) -> None:
        from sqlalchemy.engine import make_url

        from store.db.engine import normalise_url

        self.settings = settings
        self.url = make_url(normalise_url(database_url(settings)))
        base = (self.url.database or "incidex")[:30]
        self.name = str(into) if into else f"{base}_restore_{restore_stamp(to)}".lower()
        self.name = self.name.replace("-", "_")
        self.work_name = f"{self.name}{PARTIAL_SUFFIX}"
        self.final_name = self.name
        self._lock: Any = None

    def _admin(self) -> Any:
        from sqlalchemy import create_engine

        return create_engine(self.url, isolation_level="AUTOCOMMIT")

    def _execute(self, statement: str) -> None:
        from sqlalchemy import text

        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(text(statement))
        finally:
            admin.dispose()

    def _hold_lock(self) -> None:
        """Hold this work copy's advisory lock for the whole restore (its own session)."""
        from sqlalchemy import text

        engine = self._admin()
        connection = engine.connect()
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:key))"),
                           {"key": _lock_key(self.work_name)})
        self._lock = (engine, connection)

    def _release_lock(self) -> None:
        if self._lock is None:
            return
        engine, connection = self._lock
        self._lock = None
        try:
            connection.close()
        finally:
            engine.dispose()

    def prepare(self, snapshot: Snapshot | None, codec: Codec, report: RestoreReport
                ) -> Settings:
        from sqlalchemy import create_engine, text

        self._hold_lock()
        # A restore killed earlier left its work copy (never renamed, so never taken for a
        # restored store): it is ours to replace.
        self._execute(f'DROP DATABASE IF EXISTS "{self.work_name}" WITH (FORCE)')
        self._execute(f'CREATE DATABASE "{self.work_name}"')
        live = (self.url.database or "").replace("'", "''")
        self._execute(f"COMMENT ON DATABASE \"{self.work_name}\" IS '{PARTIAL_COMMENT}{live}'")
        engine = create_engine(self.url.set(database=self.work_name))
        try:
            if snapshot is None:
                schema = self._schema()
                if schema:
                    with engine.begin() as connection:
                        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
                return self._settings(self.work_name)
            codec = codec_named(snapshot.manifest["codec"], codec)
            with _scratch_file() as dump:
                unpack_frames(snapshot.path / PG_FILE, dump, codec)
                run_pg_tool("pg_restore", engine, ["--no-owner", f"--dbname={self.work_name}",
                                                   str(dump)], database=self.work_name)
            with engine.connect() as connection:
                report.snapshot_counts = dict(describe(
                    lambda sql: connection.execute(text(sql)).one())["counts"])
            report.manifest_counts = snapshot.manifest["counts"]
        finally:
            engine.dispose()
        return self._settings(self.work_name)

    def _schema(self) -> str | None:
        from sqlalchemy import create_engine

        from store.backup.snapshots import url_schema

        engine = create_engine(self.url)
        try:
            return url_schema(engine)
        finally:
            engine.dispose()

    def _settings(self, name: str) -> Settings:
        """The restored database's settings, with a data folder of its own: its vector index,
        caches and backups must never be the live store's (a rebuild there would overwrite
        the live index snapshot with the restored one, vectors of forgotten incidents and all)."""
        url = self.url.set(database=name).render_as_string(hide_password=False)
        folder = self.data_folder()
        return self.settings.model_copy(update={"database_url": url, "redis_url": None,
                                                "data_dir": folder})

    def data_folder(self) -> Path:
        """`data/restores/<database>`: where the restored store keeps its files."""
        return data_directory(self.settings) / "restores" / self.name

    def finish(self) -> None:
        try:
            if self.name.startswith(DRILL_PREFIX):
                # A drill's copy keeps a comment for as long as it lives (set before the
                # rename, so no moment leaves it unmarked): a drill killed before it drops
                # the copy leaves it for sweep_partial_databases, not for ever.
                live = (self.url.database or "").replace("'", "''")
                self._execute(f"COMMENT ON DATABASE \"{self.work_name}\" "
                              f"IS '{DRILL_COMMENT}{live}'")
                self._execute(f'ALTER DATABASE "{self.work_name}" RENAME TO "{self.name}"')
            else:
                self._execute(f'ALTER DATABASE "{self.work_name}" RENAME TO "{self.name}"')
                self._execute(f'COMMENT ON DATABASE "{self.name}" IS NULL')
        finally:
            self._release_lock()

    def discard(self) -> None:
        try:
            self._execute(f'DROP DATABASE IF EXISTS "{self.work_name}" WITH (FORCE)')
        except Exception:  # noqa: BLE001 - cleanup after a failure must not hide it
            pass
        finally:
            self._release_lock()

    def final_settings(self) -> Settings:
        return self._settings(self.name)


def sweep_partial_databases(settings: Settings) -> list[str]:
    """Drop what killed restores and drills of this store's database left on its server: the
    work copies of restores (`<name>_partial`) and the scratch copies of drills
    (`incidex_drill_…`) whose process is gone (its advisory lock went with its session);
    their names. A copy whose restore or drill still runs holds its lock and is left."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db.engine import normalise_url

    url = make_url(normalise_url(database_url(settings)))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    dropped = []
    try:
        with admin.connect() as connection:
            rows = connection.execute(text(
                "SELECT d.datname, c.description FROM pg_database d JOIN pg_shdescription c "
                "ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass "
                "WHERE (c.description = :partial AND d.datname LIKE :suffix) "
                "OR c.description = :drill"),
                {"partial": PARTIAL_COMMENT + (url.database or ""),
                 "drill": DRILL_COMMENT + (url.database or ""),
                 "suffix": "%" + PARTIAL_SUFFIX}).all()
            for name, comment in rows:
                keys = [_lock_key(name)]
                if comment.startswith(DRILL_COMMENT):
                    base = name.removesuffix(PARTIAL_SUFFIX)
                    keys = [drill_lock_key(base), _lock_key(base + PARTIAL_SUFFIX)]
                if _drop_unless_locked(connection, name, keys):
                    dropped.append(name)
                    if comment.startswith(DRILL_COMMENT):  # and the folder of its index
                        shutil.rmtree(data_directory(settings) / "restores"
                                      / name.removesuffix(PARTIAL_SUFFIX), ignore_errors=True)
    finally:
        admin.dispose()
    return dropped


def _drop_unless_locked(connection: Any, name: str, keys: list[str]) -> bool:
    """Drop database `name` if none of the advisory locks `keys` is held elsewhere."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    taken: list[str] = []
    try:
        for key in keys:
            if not connection.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"),
                                      {"key": key}).scalar_one():
                return False  # a restore or drill is using it now
            taken.append(key)
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return True
    except SQLAlchemyError:
        return False  # another role's copy: not ours to drop
    finally:
        for key in taken:
            connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})


class _scratch_file:
    """A private temp file path, removed on exit."""

    def __enter__(self) -> Path:
        import tempfile

        descriptor, name = tempfile.mkstemp(prefix="incidex-restore-")
        os.close(descriptor)
        self.path = Path(name)
        return self.path

    def __exit__(self, *_exc: object) -> None:
        self.path.unlink(missing_ok=True)


@contextmanager
def drill_lock(settings: Settings, name: str) -> Iterator[None]:
    """Hold the advisory lock of drill copy `name` (in a session of its own) while the
    drill runs, so that sweep_partial_databases leaves the copy to the drill."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db.engine import normalise_url

    engine = create_engine(make_url(normalise_url(database_url(settings))),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(hashtext(:key))"),
                               {"key": drill_lock_key(name)})
            yield  # the lock ends with the session
    finally:
        engine.dispose()


def drop_postgres_database(settings: Settings) -> None:
    """Drop a restored PostgreSQL database (a drill's scratch copy)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db.engine import normalise_url

    url = make_url(normalise_url(database_url(settings)))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()
