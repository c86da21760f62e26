"""PostgreSQL point-in-time recovery by WAL: pg_basebackup snapshots and archive replay.

When the store's server archives WAL into a folder incidex can read (INCIDEX_BACKUP_PG_WAL_DIR,
`archive_mode` on, a role with REPLICATION), a snapshot is a `pg_basebackup --format=tar
--wal-method=stream` with its backup manifest, each file stored as compressed (and encoded)
frames beside our own manifest. A restore to a time unpacks the newest base backup taken
before it into a scratch data directory, checks it with pg_verifybackup, starts a temporary
PostgreSQL there (as the server's OS user: PostgreSQL refuses root) on a free port with
`restore_command` reading the archive and `recovery_target_time`, waits for it to promote,
checks it with pg_amcheck, and brings the store's database out with pg_dump | pg_restore into
a NEW database on the live server. The scratch cluster is stopped and removed afterwards, also
on failure; one left by a killed restore is removed by the next.

Invariants: a restore to T holds exactly the transactions committed at or before T (the live
server is asked to close and archive its current WAL segment first, after a marker commit,
so the archive reaches past T); a gap in the archive that the restore would cross is named
(the missing segment, the last commit before it) instead of silently stopping early; nothing
here writes to the live store's database except that marker transaction.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.backup.codec import Codec, codec_named
from store.backup.frames import unpack_frames, write_frames
from store.backup.journal import iso
from store.backup.restore import RestoreReport, _PostgresTarget
from store.backup.snapshots import (
    BASE_BACKUP_KIND,
    Snapshot,
    _file_entry,
    describe,
    list_snapshots,
    pg_tool,
    url_schema,
    verify_snapshot,
)
from store.backup.snapshots import pg_environment as _environment
from store.backup.snapshots import run_pg_program as _run
from store.errors import BackupFailed

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from store.settings import Settings
    from store.store import Store

KIND = BASE_BACKUP_KIND
BASE_FILE = "pg_base.tar.zst"
WAL_FILE = "pg_wal.tar.zst"
BACKUP_MANIFEST_FILE = "backup_manifest.zst"
SCRATCH_PREFIX = "incidex-pitr-"
# How long a scratch server may take to replay the archive and promote.
RECOVERY_TIMEOUT_SECONDS = 3600
ARCHIVE_WAIT_SECONDS = 60
_SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_COMMIT = re.compile(r"COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (\w+)")


@dataclass(frozen=True, slots=True)
class WalArchive:
    """Where the server archives WAL, and whether a base backup can be taken."""

    directory: Path | None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        """Configured, archiving, and this role may take base backups."""
        return self.directory is not None and self.problem is None


def wal_archive(store: Store) -> WalArchive:
    """The store's WAL archive as configured and as the server reports it: unusable (with the
    reason) when it is not configured, not a folder, or the server does not archive."""
    configured = store.settings.backup_pg_wal_dir
    if configured is None or store.engine.dialect.name != "postgresql":
        return WalArchive(None)
    directory = Path(configured).expanduser().resolve()
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.X_OK):
        return WalArchive(directory, f"INCIDEX_BACKUP_PG_WAL_DIR: {directory} is not a "
                          "readable folder")
    from sqlalchemy import text

    with store.engine.connect() as connection:
        mode = connection.execute(text("SHOW archive_mode")).scalar_one()
        command = connection.execute(text("SHOW archive_command")).scalar_one()
        library = connection.execute(text("SHOW archive_library")).scalar_one()
        level = connection.execute(text("SHOW wal_level")).scalar_one()
        may = connection.execute(text(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )).scalar_one()
    if mode not in ("on", "always"):
        return WalArchive(directory, f"the server's archive_mode is {mode!r}, not 'on'")
    if (not (command or "").strip() or command == "(disabled)") and not library:
        return WalArchive(directory, "the server has no archive_command")
    if level == "minimal":
        return WalArchive(directory, "the server's wal_level is 'minimal'")
    if not may:
        return WalArchive(directory, "the store's role has no REPLICATION privilege "
                          "(ALTER ROLE ... REPLICATION) for pg_basebackup")
    return WalArchive(directory)


def base_backup_method(store: Store, codec: Codec) -> Callable[[Path], Any]:
    """The `base_backup` hook of take_snapshot for this store (see snapshots.BaseBackup)."""

    def take(work: Path) -> tuple[dict[str, Any], dict[str, Any]] | str | None:
        archive = wal_archive(store)
        if not archive.usable:
            return archive.problem
        return base_backup(store, archive, work, codec)

    return take


def base_backup(store: Store, archive: WalArchive, work: Path, codec: Codec
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """pg_basebackup of the store's server into `work`: its tar files and backup manifest as
    frames, and the manifest facts (counts read just after it, the WAL range, the archive)."""
    from sqlalchemy import text

    engine = store.engine
    raw = work / ".base"
    _run("pg_basebackup", ["--pgdata", str(raw), "--format=tar", "--wal-method=stream",
                           "--checkpoint=fast", "--manifest-checksums=SHA256", "--no-password",
                           f"--label=incidex {work.name}"], _environment(engine.url))
    extra = sorted(p.name for p in raw.glob("*.tar") if p.name not in ("base.tar",
                                                                        "pg_wal.tar"))
    if extra:
        raise BackupFailed(f"pg_basebackup: the cluster has tablespaces ({', '.join(extra)}), "
                           "which WAL snapshots do not carry yet; unset "
                           "INCIDEX_BACKUP_PG_WAL_DIR to take pg_dump snapshots")
    manifest = json.loads((raw / "backup_manifest").read_text())
    ranges = manifest.get("WAL-Ranges") or []
    if not ranges:
        raise BackupFailed(f"pg_basebackup: {raw / 'backup_manifest'} names no WAL range")
    with engine.connect() as connection:
        facts = describe(lambda sql: connection.execute(text(sql)).one())
        system = connection.execute(text(
            "SELECT system_identifier::text FROM pg_control_system()")).scalar_one()
        version = connection.execute(text("SHOW server_version_num")).scalar_one()
        start_segment = connection.execute(text("SELECT pg_walfile_name(:lsn)"), {
            "lsn": ranges[0]["Start-LSN"]}).scalar_one()
    files: dict[str, Any] = {}
    for source, name in (("base.tar", BASE_FILE), ("pg_wal.tar", WAL_FILE),
                         ("backup_manifest", BACKUP_MANIFEST_FILE)):
        files[name] = _file_entry(write_frames(raw / source, work / name, codec))
    shutil.rmtree(raw)
    return {**facts, "wal": {
        "archive": str(archive.directory), "timeline": int(ranges[0]["Timeline"]),
        "start_lsn": ranges[0]["Start-LSN"], "end_lsn": ranges[-1]["End-LSN"],
        "start_segment": start_segment, "system_identifier": system,
        "server_version_num": int(version), "database": engine.url.database,
        "schema": url_schema(engine), "user": engine.url.username,
        "counts_read": "just after the base backup ended",
    }}, files


def is_wal_snapshot(snapshot: Snapshot) -> bool:
    """Whether a snapshot is a pg_basebackup (restored by WAL replay)."""
    return snapshot.manifest.get("kind") == KIND


def choose_wal_snapshot(backups: Path, to: datetime) -> Snapshot | None:
    """The newest snapshot taken before `to` when it is a base backup (else None: the journal
    path restores it); BackupFailed naming the fault when its files are damaged."""
    usable = [s for s in list_snapshots(backups) if s.manifest and s.taken_at <= to]
    if not usable or not is_wal_snapshot(usable[-1]):
        return None
    problem = verify_snapshot(usable[-1])
    if problem is not None:
        raise BackupFailed(f"restore to {iso(to)}: {problem}; a restore to before "
                           f"{usable[-1].manifest['taken_at']} uses an older snapshot")
    return usable[-1]


@dataclass(slots=True)
class WalRestoreReport(RestoreReport):
    """A RestoreReport of a WAL restore, with what the scratch server did."""

    recovery_target: str = ""
    amcheck: str | None = None
    amcheck_ok: bool = True
    verifybackup: str = ""
    # Live counts read before the target time and after it (a drill): the restored counts lie
    # between them table by table (equal when nothing was written meanwhile).
    counts_between: tuple[dict[str, int], dict[str, int]] | None = None
    # Seconds of each step (unpack, verify, recover, amcheck, dump, load, open).
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one step into `phases`."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - began, 3)


@dataclass(frozen=True, slots=True)
class ArchiveMark:
    """The live server after a marker commit and a WAL switch: the archive holds every
    transaction committed before `at`."""

    at: datetime
    segment: str


def close_segment(engine: Engine, archive: Path) -> ArchiveMark | None:
    """Commit a marker transaction, switch WAL and wait until its segment is archived; None
    when this role may not switch WAL (the archive then ends wherever the server got to)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with engine.connect() as connection:
        with connection.begin():
            connection.execute(text("SELECT txid_current()"))  # a commit record after `to`
            at = datetime.now(UTC)
        try:
            with connection.begin():
                segment = connection.execute(text(
                    "SELECT pg_walfile_name(pg_switch_wal())")).scalar_one()
        except DBAPIError:
            return None
    deadline = time.monotonic() + ARCHIVE_WAIT_SECONDS
    while not (archive / segment).exists():
        if time.monotonic() > deadline:
            raise BackupFailed(f"restore: the server did not archive WAL segment {segment} "
                               f"into {archive} within {ARCHIVE_WAIT_SECONDS} s (is its "
                               "archive_command failing? see pg_stat_archiver)")
        time.sleep(0.1)
    return ArchiveMark(at, segment)


def restore_by_wal(settings: Settings, codec: Codec, snapshot: Snapshot, to: datetime,
                   into: str | Path | None, open_store: Callable[[Settings], Store],
                   mark: ArchiveMark | None, server_user: str) -> WalRestoreReport:
    """Restore the store as of `to` from a base backup and the WAL archive into a new
    database on the live server (see the module's docstring)."""
    started = time.monotonic()
    to = to.astimezone(UTC)
    wal = snapshot.manifest["wal"]
    archive = Path(wal["archive"])
    # Past the marker commit nothing later is archived: replay the whole archive. Without a
    # mark (no right to switch WAL) the target time stands, and the archive must reach it.
    latest = mark is not None and to >= mark.at
    _check_archive(archive, wal, to, latest)
    target = _ScratchTarget(settings, into, to)
    report = WalRestoreReport(to, settings, target.final_name, snapshot.snapshot_id)
    report.recovery_target = "end of the archive" if latest else f"time {iso(to)}"
    report.newest_point = mark.at if latest and mark else to
    remove_stale_scratch()
    with scratch_cluster(snapshot, codec, archive, None if latest else to, server_user,
                         report) as cluster:
        target.cluster = cluster
        try:
            report.settings = target.prepare(snapshot, codec, report)
            with report.phase("open"), open_store(report.settings):
                pass  # it opens: the schema is at a revision this program knows
            target.finish()
        except BaseException:
            target.discard()
            raise
    report.settings = target.final_settings()
    report.seconds = time.monotonic() - started
    return report


@dataclass(slots=True)
class ScratchCluster:
    """A temporary PostgreSQL over a recovered copy: where to reach it."""

    directory: Path
    socket_directory: Path
    port: int
    user: str

    def environment(self, database: str) -> dict[str, str]:
        """libpq variables that reach it over its Unix socket."""
        return {**os.environ, "PGHOST": str(self.socket_directory), "PGPORT": str(self.port),
                "PGUSER": self.user, "PGDATABASE": database}


@contextmanager
def scratch_cluster(snapshot: Snapshot, codec: Codec, archive: Path, to: datetime | None,
                    server_user: str, report: WalRestoreReport) -> Iterator[ScratchCluster]:
    """Unpack the base backup, verify it, recover to `to` (None: the archive's end) in a
    temporary server, and yield it; stopped and removed afterwards whatever happens."""
    directory = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    data = directory / "data"
    sockets = directory / "socket"
    started = False
    try:
        codec = codec_named(snapshot.manifest["codec"], codec)
        data.mkdir(mode=0o700)
        sockets.mkdir(mode=0o700)
        with report.phase("unpack"):
            _unpack(snapshot, codec, directory, data)
        with report.phase("verify"):
            report.verifybackup = _run(
                "pg_verifybackup", ["--quiet", str(data)],
                what=f"pg_verifybackup of snapshot {snapshot.snapshot_id}",
            ).strip() or "pg_verifybackup: backup successfully verified"
        port = _free_port()
        _configure(data, sockets, port, archive, to)
        _chown_tree(directory, server_user)
        started = True
        url_user = snapshot.manifest.get("wal", {}).get("user") or "postgres"
        cluster = ScratchCluster(directory, sockets, port, url_user)
        try:
            with report.phase("recover"):
                _run("pg_ctl", ["--pgdata", str(data), "--log", str(directory / "server.log"),
                                "--wait", f"--timeout={RECOVERY_TIMEOUT_SECONDS}", "start"],
                     user=server_user, what="the scratch PostgreSQL")
                _wait_promoted(cluster, data)
        except BackupFailed as error:
            raise BackupFailed(_recovery_failure(directory / "server.log", archive,
                                                 snapshot, to, str(error))) from None
        yield cluster
    finally:
        if started:
            with suppress(BackupFailed):
                _run("pg_ctl", ["--pgdata", str(data), "--mode=immediate", "--wait", "stop"],
                     user=server_user)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_promoted(cluster: ScratchCluster, data: Path) -> None:
    """Until the scratch server has replayed to its target and accepts connections (with
    hot_standby off, pg_ctl returns as soon as it runs); BackupFailed if it stops instead."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
    environment = cluster.environment("postgres")
    while True:
        answer = subprocess.run([pg_tool("pg_isready"), "--timeout=5"], env=environment,
                                capture_output=True, check=False).returncode
        if answer == 0:
            return
        if not (data / "postmaster.pid").exists():
            raise BackupFailed("the scratch PostgreSQL stopped during recovery")
        if time.monotonic() > deadline:
            raise BackupFailed(f"recovery took over {RECOVERY_TIMEOUT_SECONDS} s")
        time.sleep(0.1)


def _unpack(snapshot: Snapshot, codec: Codec, directory: Path, data: Path) -> None:
    files = snapshot.manifest["files"]
    for name, inside in ((BASE_FILE, data), (WAL_FILE, data / "pg_wal")):
        plain = directory / name.removesuffix(".zst")
        digest = unpack_frames(snapshot.path / name, plain, codec)
        if digest != files[name]["plain_sha256"]:
            raise BackupFailed(f"snapshot {snapshot.snapshot_id}: {name} does not match its "
                               "checksum once unpacked")
        inside.mkdir(mode=0o700, exist_ok=True)
        _run("/bin/tar", ["--extract", "--file", str(plain), "--directory", str(inside)],
             what=f"unpacking {name} of snapshot {snapshot.snapshot_id}")
        plain.unlink()
    unpack_frames(snapshot.path / BACKUP_MANIFEST_FILE, data / "backup_manifest", codec)


def _configure(data: Path, sockets: Path, port: int, archive: Path, to: datetime | None
               ) -> None:
    """A configuration of our own (the backup's, which may archive into the live archive or
    name files under /etc, is kept aside), recovery settings, and recovery.signal."""
    if "'" in str(archive):
        raise BackupFailed(f"restore: the WAL archive path {archive} contains a quote")
    for name in ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"):
        with suppress(FileNotFoundError):
            os.replace(data / name, data / f"{name}.from-backup")
    (data / "standby.signal").unlink(missing_ok=True)
    lines = [
        "listen_addresses = ''", f"port = {port}", f"unix_socket_directories = '{sockets}'",
        "archive_mode = off", "hot_standby = off", "fsync = off", "full_page_writes = off",
        "shared_buffers = '64MB'",
        f"restore_command = 'cp \"{archive}/%f\" \"%p\"'",
        "recovery_target_action = 'promote'", "recovery_target_timeline = 'current'",
    ]
    if to is not None:
        lines.append(f"recovery_target_time = '{to.isoformat()}'")
    (data / "postgresql.conf").write_text("\n".join(lines) + "\n")
    (data / "postgresql.auto.conf").write_text("")
    (data / "pg_hba.conf").write_text("local all all trust\n")
    (data / "pg_ident.conf").write_text("")
    (data / "recovery.signal").write_text("")


def _chown_tree(directory: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for root, folders, files in os.walk(directory):
        for name in [root, *(os.path.join(root, f) for f in folders + files)]:
            os.lchown(name, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def remove_stale_scratch() -> int:
    """Stop and remove scratch clusters whose restore was killed; how many."""
    from store.fileio import pid_alive

    removed = 0
    for entry in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        found = re.match(rf"{SCRATCH_PREFIX}(\d+)-", entry.name)
        if found is None or pid_alive(int(found.group(1))):
            continue
        pid_file = entry / "data" / "postmaster.pid"
        with suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


class _ScratchTarget(_PostgresTarget):
    """A new database on the live server, loaded from the recovered scratch cluster."""

    cluster: ScratchCluster

    def prepare(self, snapshot: Snapshot | None, codec: Codec, report: RestoreReport
                ) -> Settings:
        from sqlalchemy import create_engine, text

        assert snapshot is not None and isinstance(report, WalRestoreReport)
        wal = snapshot.manifest["wal"]
        database = wal["database"]
        schema = wal.get("schema")
        environment = self.cluster.environment(database)
        with report.phase("amcheck"):
            try:
                _run("pg_amcheck", ["--install-missing", "--heapallindexed",
                                    "--no-strict-names", "--database", database], environment,
                     what="pg_amcheck")
                report.amcheck = f"pg_amcheck: no corruption in {database} (heap and indexes)"
            except BackupFailed as error:
                report.amcheck, report.amcheck_ok = str(error), False
        self._execute(f'DROP DATABASE IF EXISTS "{self.work_name}" WITH (FORCE)')
        self._execute(f'CREATE DATABASE "{self.work_name}"')
        dump = self.cluster.directory / "store.pgdump"
        with report.phase("dump"):
            _run("pg_dump", ["--format=custom", f"--file={dump}", "--no-owner",
                             *([f"--schema={schema}"] if schema else []), database],
                 environment, what="pg_dump of the recovered database")
        engine = create_engine(self.url.set(database=self.work_name))
        try:
            with report.phase("load"):
                _run("pg_restore", ["--no-owner", f"--dbname={self.work_name}", str(dump)],
                     _environment(self.url, database=self.work_name),
                     what="pg_restore into the new database")
            with engine.connect() as connection:
                report.snapshot_counts = dict(describe(
                    lambda sql: connection.execute(text(sql)).one())["counts"])
        finally:
            engine.dispose()
            dump.unlink(missing_ok=True)
        return self._settings(self.work_name)


# -- the archive: gaps and the last commit before one -------------------------------------


def _segment_number(name: str) -> tuple[int, int]:
    """(timeline, position) of a WAL file name (16 MB segments: 256 per log id)."""
    return int(name[:8], 16), int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def _segment_name(timeline: int, number: int) -> str:
    return f"{timeline:08X}{number // 0x100:08X}{number % 0x100:08X}"


def archived_segments(archive: Path, timeline: int, first: str) -> list[int]:
    """Positions of the archived segments of `timeline` from `first` on, in order."""
    start = _segment_number(first)[1]
    found = []
    for name in os.listdir(archive):
        if _SEGMENT.match(name):
            line, number = _segment_number(name)
            if line == timeline and number >= start:
                found.append(number)
    return sorted(found)


def last_commit_in(archive: Path, timeline: int, numbers: list[int]) -> datetime | None:
    """The time of the newest commit in the newest of these archived segments that has one."""
    for number in reversed(numbers):
        output = subprocess.run(
            [pg_tool("pg_waldump"), "--path", str(archive), "--rmgr=Transaction",
             _segment_name(timeline, number)], capture_output=True, text=True, check=False,
        ).stdout
        commits = _COMMIT.findall(output)
        if commits:
            stamp, zone = commits[-1]
            when = datetime.fromisoformat(stamp)
            return when.replace(tzinfo=UTC) if zone == "UTC" else when.astimezone(UTC)
    return None


def archive_summary(snapshots: list[Snapshot], archive: Path | None = None) -> str | None:
    """One line on the WAL archive behind the good base backups: which segments it holds
    from the oldest one's start, and the first missing one if there is a gap (None when no
    snapshot is a base backup)."""
    based = [s for s in snapshots if s.good and is_wal_snapshot(s)]
    if not based:
        return None
    wal = based[0].manifest["wal"]
    folder = archive or Path(wal["archive"])
    if not folder.is_dir():
        return f"WAL archive {folder}: NOT THERE (restores by WAL cannot run)"
    timeline = int(wal["timeline"])
    numbers = archived_segments(folder, timeline, wal["start_segment"])
    start = _segment_number(wal["start_segment"])[1]
    gap = next((start + i for i, n in enumerate(numbers) if n != start + i), None)
    if not numbers:
        return f"WAL archive {folder}: no segment from {wal['start_segment']} on yet"
    held = (f"WAL archive {folder}: {len(numbers)} segments from {wal['start_segment']} to "
            f"{_segment_name(timeline, numbers[-1])}")
    if gap is not None:
        return f"{held}; segment {_segment_name(timeline, gap)} is MISSING (a gap)"
    return held + ", continuous"


def _check_archive(archive: Path, wal: dict[str, Any], to: datetime, latest: bool) -> None:
    """Fail naming the missing segment when the archive has a gap a restore to `to` crosses."""
    if not archive.is_dir():
        raise BackupFailed(f"restore to {iso(to)}: the WAL archive {archive} is not there")
    timeline = int(wal["timeline"])
    numbers = archived_segments(archive, timeline, wal["start_segment"])
    expected = _segment_number(wal["start_segment"])[1]
    contiguous: list[int] = []
    for number in numbers:
        if number != expected:
            break
        contiguous.append(number)
        expected += 1
    if len(contiguous) == len(numbers):
        return  # no gap (the segments the base backup streamed itself need not be archived)
    missing = _segment_name(timeline, expected)
    before = last_commit_in(archive, timeline, contiguous) if contiguous else None
    if not latest and before is not None and to < before:
        return  # recovery stops at the commit after `to`, before it reaches the gap
    reach = (f"the last commit before it is at {iso(before)}; a restore to before that time "
             "still works" if before else "no commit before it is in the archive")
    raise BackupFailed(f"restore to {iso(to)}: WAL segment {missing} is missing from the "
                       f"archive {archive} (timeline {timeline}); {reach}")


def _recovery_failure(log: Path, archive: Path, snapshot: Snapshot, to: datetime | None,
                      error: str) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    fatal = [line for line in lines if "FATAL" in line or "PANIC" in line]
    when = "the end of the archive" if to is None else iso(to)
    reason = fatal[-1].split(":  ", 1)[-1] if fatal else error
    wal = snapshot.manifest["wal"]
    numbers = archived_segments(archive, int(wal["timeline"]), wal["start_segment"])
    newest = (_segment_name(int(wal["timeline"]), numbers[-1]) if numbers else "none")
    return (f"restore to {when}: recovery from snapshot {snapshot.snapshot_id} failed: "
            f"{reason} (the newest archived WAL segment in {archive} is {newest})")
