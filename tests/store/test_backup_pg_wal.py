"""Point-in-time recovery on PostgreSQL by WAL: base backups and archive replay, on a private
cluster that archives WAL (the shared server is never reconfigured)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store.backup.journal import iso
from store.backup.pg_wal import KIND, archived_segments
from store.backup.restore import drop_postgres_database
from store.backup.service import Backups
from store.backup.snapshots import list_snapshots
from store.errors import BackupFailed
from store.settings import Settings
from store.store import Store
from tests.conftest import REPO_ROOT
from tests.support.backups import analysis_ids, drop_restored, save
from tests.support.pg_cluster import PostgresCluster, require_server_bin


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """One archiving cluster for the module's tests (each test has its own database)."""
    require_server_bin()
    with PostgresCluster() as running:
        yield running


def _settings(cluster: PostgresCluster, data: Path) -> Settings:
    url = cluster.create_database(f"s_{uuid.uuid4().hex[:10]}")
    return Settings(data_dir=data, database_url=url, backup_pg_wal_dir=cluster.archive)


@pytest.fixture
def wal_store(cluster: PostgresCluster, isolated_directories: Path) -> Iterator[Store]:
    opened = Store.open(_settings(cluster, isolated_directories))
    yield opened
    opened.close()


@pytest.fixture
def restores() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    drop_restored(made)


def test_backup_now_takes_a_base_backup_with_its_manifest(wal_store: Store) -> None:
    save(wal_store, "B-1", "B-2")
    snapshot = Backups(wal_store).now()
    manifest = snapshot.manifest
    assert manifest["kind"] == KIND
    assert set(manifest["files"]) == {"pg_base.tar.zst", "pg_wal.tar.zst",
                                      "backup_manifest.zst"}
    assert manifest["counts"]["analyses"] == 2
    assert manifest["wal"]["archive"] == str(wal_store.settings.backup_pg_wal_dir)
    assert manifest["wal"]["start_segment"] and manifest["alembic_revision"]
    assert Backups(wal_store).status().oldest_restorable is not None


def test_restoring_to_each_save_by_wal_gives_exactly_the_rows_committed_before_it(
        wal_store: Store, restores: list[Any]) -> None:
    backups = Backups(wal_store)
    before_backup = save(wal_store, "A-1")
    backups.now()
    marks: list[datetime] = []
    wanted: list[set[str]] = []
    for batch in (("A-2", "A-3"), ("B-1",), ("C-1", "C-2", "C-3")):
        marks.append(save(wal_store, *batch))
        wanted.append(analysis_ids(wal_store.settings))
    assert [len(w) for w in wanted] == [3, 4, 7]
    # The journal must not be what restores it: remove it, only WAL is left.
    for day in (wal_store.backups / "journal").glob("*"):
        day.unlink()
    for mark, expected in zip(marks, wanted, strict=True):
        report = backups.restore(mark)
        restores.append(report)
        assert report.snapshot_id is not None and report.records_replayed == 0
        assert analysis_ids(report.settings) == expected, mark
    latest = backups.restore(datetime.now(UTC) + timedelta(seconds=1))
    restores.append(latest)
    assert analysis_ids(latest.settings) == wanted[-1]
    assert before_backup < list_snapshots(wal_store.backups)[0].taken_at
    assert wal_store.summary() is not None  # the live store is untouched and still opens


def test_the_drill_restores_by_wal_and_checks_with_pg_amcheck(wal_store: Store) -> None:
    backups = Backups(wal_store)
    save(wal_store, "D-1", "D-2")
    backups.now()
    save(wal_store, "D-3")
    report = backups.drill()
    assert report.ok, report.checks
    checks = {name: detail for name, _ok, detail in report.checks}
    assert "pg_amcheck" in checks["integrity"]
    assert "recovered by WAL" in checks["counts"]
    assert "'analyses': 3" in checks["counts"]
    assert checks["journal sample"].startswith("3 of 3 sampled journal lines match")


def test_without_an_archive_backup_now_keeps_the_pg_dump_path(
        cluster: PostgresCluster, isolated_directories: Path) -> None:
    settings = _settings(cluster, isolated_directories).model_copy(
        update={"backup_pg_wal_dir": isolated_directories / "no-such-archive"})
    with Store.open(settings) as store:
        save(store, "N-1")
        snapshot = Backups(store).now()
    assert snapshot.manifest["kind"] == "postgresql"
    assert "not a readable folder" in snapshot.manifest["wal_unavailable"]


def test_a_missing_wal_segment_is_named_and_an_earlier_time_still_restores(
        isolated_directories: Path) -> None:
    require_server_bin()
    # Its own cluster: the archive gets damaged (not the module's cluster).
    with PostgresCluster() as own, Store.open(_settings(own, isolated_directories)) as store:
        backups = Backups(store)
        backups.now()
        early = save(store, "E-1")
        _switch(store)
        save(store, "E-2")
        missing = _switch(store)  # the segment that holds E-2's commit
        late = save(store, "E-3")
        _switch(store)
        segments = archived_segments(own.archive, 1, list_snapshots(
            store.backups)[-1].manifest["wal"]["start_segment"])
        (own.archive / missing).unlink()
        with pytest.raises(BackupFailed) as raised:
            backups.restore(late)
        message = str(raised.value)
        assert f"WAL segment {missing} is missing" in message, message
        assert f"segment {missing} is MISSING" in str(backups.archive_summary(
            list_snapshots(store.backups)))
        assert "a restore to before" in message
        report = backups.restore(early)
        try:
            assert analysis_ids(report.settings) == {
                a.analysis_id for a in store.analyses("E-1")}
        finally:
            drop_postgres_database(report.settings)
        assert len(segments) >= 3


def _switch(store: Store) -> str:
    """Commit, switch WAL, wait until the closed segment is archived; its name."""
    from sqlalchemy import text

    with store.engine.connect() as connection:
        connection.execute(text("SELECT txid_current()"))
        connection.commit()
        segment = connection.execute(text("SELECT pg_walfile_name(pg_switch_wal())")).scalar()
        connection.commit()
    archive = Path(str(store.settings.backup_pg_wal_dir))
    deadline = time.monotonic() + 30
    while not (archive / str(segment)).exists():
        assert time.monotonic() < deadline, f"{segment} was not archived"
        time.sleep(0.05)
    return str(segment)


def test_kill_9_during_backup_now_leaves_no_snapshot_listed_as_good(
        wal_store: Store) -> None:
    for n in range(5):
        save(wal_store, *(f"K-{n}-{m}" for m in range(20)))
    environment = {**os.environ, "INCIDEX_DATABASE_URL": str(wal_store.settings.database_url),
                   "INCIDEX_BACKUP_PG_WAL_DIR": str(wal_store.settings.backup_pg_wal_dir),
                   "INCIDEX_DATA_DIR": str(wal_store.settings.data_dir)}
    incoming = wal_store.backups / "snapshots" / ".incoming"
    process = subprocess.Popen([sys.executable, "-m", "tui", "backup", "now"],
                               env=environment, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (incoming.exists() and any(p.is_dir() and any(p.iterdir())
                                         for p in incoming.iterdir())):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [s for s in list_snapshots(wal_store.backups) if s.good] == []
    _wait_until_gone(str(incoming))  # pg_basebackup dies with it (no orphan writing on)
    snapshot = Backups(wal_store).now()  # the next backup sweeps the killed one's folder
    assert [s.snapshot_id for s in list_snapshots(wal_store.backups)] == [snapshot.snapshot_id]
    assert list(incoming.iterdir()) == []


def test_the_command_line_says_which_kind_each_snapshot_is_and_restores_by_wal(
        wal_store: Store, tmp_path: Path, restores: list[Any]) -> None:
    settings = wal_store.settings
    environment = {**os.environ, "INCIDEX_DATABASE_URL": str(settings.database_url),
                   "INCIDEX_BACKUP_PG_WAL_DIR": str(settings.backup_pg_wal_dir),
                   "INCIDEX_DATA_DIR": str(settings.data_dir)}

    def incidex(*arguments: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "tui.cli", *arguments], env=environment,
                              capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    save(wal_store, "CLI-1")
    taken = incidex("backup", "now")
    assert "(pg_basebackup + WAL from " in taken.stdout, taken.stdout
    mark = save(wal_store, "CLI-2")
    save(wal_store, "CLI-3")
    listed = incidex("backup", "list")
    assert "pg_basebackup + WAL" in listed.stdout and "oldest restorable time: 20" in (
        listed.stdout)
    assert f"WAL archive {settings.backup_pg_wal_dir}: " in listed.stdout
    assert ", continuous" in listed.stdout, listed.stdout
    name = f"wal_cli_{uuid.uuid4().hex[:6]}"
    restored = incidex("backup", "restore", "--to", mark.isoformat(), "--into", name)
    assert f"WAL replayed to time {mark.isoformat()}" in (
        restored.stdout), restored.stdout
    assert "pg_amcheck: no corruption" in restored.stdout
    report_settings = settings.model_copy(update={"database_url": str(
        settings.database_url).rsplit("/", 1)[0] + "/" + name})
    restores.append(type("Made", (), {"settings": report_settings})())
    assert len(analysis_ids(report_settings)) == 2


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_until_gone(text: str) -> None:
    deadline = time.monotonic() + 15
    while _processes_naming(text):
        assert time.monotonic() < deadline, f"still running: {_processes_naming(text)}"
        time.sleep(0.05)


def test_kill_9_during_a_wal_restore_leaves_the_live_store_and_the_next_restore_cleans_up(
        wal_store: Store, restores: list[Any]) -> None:
    import tempfile

    backups = Backups(wal_store)
    backups.now()
    mark = save(wal_store, "R-1")
    before = analysis_ids(wal_store.settings)
    settings = wal_store.settings
    environment = {**os.environ, "INCIDEX_DATABASE_URL": str(settings.database_url),
                   "INCIDEX_BACKUP_PG_WAL_DIR": str(settings.backup_pg_wal_dir),
                   "INCIDEX_DATA_DIR": str(settings.data_dir)}
    process = subprocess.Popen([sys.executable, "-m", "tui.cli", "backup", "restore", "--to",
                                mark.isoformat()], env=environment, cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    scratch = Path(tempfile.gettempdir())
    deadline = time.monotonic() + 120
    running: list[Path] = []
    while not running:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        running = [p for p in scratch.glob(f"incidex-pitr-{process.pid}-*")
                   if (p / "data" / "postmaster.pid").exists()]
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert analysis_ids(wal_store.settings) == before  # the live store is untouched
    report = backups.restore(mark)  # removes the killed restore's scratch server and folder
    restores.append(report)
    assert not running[0].exists()
    _wait_until_gone(str(running[0]))
    assert analysis_ids(report.settings) == before


def test_a_time_before_the_first_base_backup_restores_from_the_journal(
        wal_store: Store, restores: list[Any]) -> None:
    early = save(wal_store, "J-1")
    wanted = analysis_ids(wal_store.settings)
    Backups(wal_store).now()
    save(wal_store, "J-2")
    report = Backups(wal_store).restore(early)
    restores.append(report)
    assert not hasattr(report, "recovery_target")  # no base backup before it: the journal
    assert report.snapshot_id is None and report.records_replayed == 1
    assert analysis_ids(report.settings) == wanted


def test_without_the_right_to_switch_wal_a_time_past_the_archive_is_refused_clearly(
        cluster: PostgresCluster, isolated_directories: Path) -> None:
    from sqlalchemy import create_engine, text

    role = f"r_{uuid.uuid4().hex[:8]}"
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN REPLICATION'))
        connection.execute(text(f'CREATE DATABASE "{role}" OWNER "{role}"'))
    admin.dispose()
    settings = Settings(data_dir=isolated_directories, backup_pg_wal_dir=cluster.archive,
                        database_url=f"postgresql+psycopg://{role}@127.0.0.1:{cluster.port}/"
                        f"{role}")
    with Store.open(settings) as store:
        backups = Backups(store)
        assert backups.now().manifest["kind"] == KIND
        mark = save(store, "S-1")  # its commit stays in the current segment: not archived
        with pytest.raises(BackupFailed) as raised:
            backups.restore(mark)
    message = str(raised.value)
    assert f"restore to {iso(mark)}" in message, message
    assert "recovery ended before configured recovery target was reached" in message, message
    assert "the newest archived WAL segment in " in message
