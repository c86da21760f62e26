"""Faults during backups: kill -9, a full disk, a torn journal append, legacy files to fold.

Full disk is a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored, so writes fail with
EFBIG) in a subprocess: mounting a small tmpfs needs root, which the tests do not assume.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from store.backup.journal import day_path, journal_days, journal_directory, scan
from store.backup.legacy import legacy_files
from store.backup.service import Backups
from store.backup.snapshots import INCOMING, list_snapshots, snapshots_directory, verify_snapshot
from store.schemas import AnalysisIn
from store.settings import Settings
from store.store import Store
from tests.conftest import make_record
from tests.support.journal import journaled_ids

PREAMBLE = """
import os, sys
from pathlib import Path
from store.settings import Settings
from store.store import Store
from store.backup.service import Backups
"""


def filled_store(data: Path, count: int = 40, url: str | None = None) -> Settings:
    settings = Settings(data_dir=data, database_url=url)
    with Store.open(settings) as store:
        store.save_many([(f"line {n}", AnalysisIn.model_validate(make_record(f"F-{n}")))
                         for n in range(count)])
    return settings


def run_python(code: str, data: Path, url: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    database = {"INCIDEX_DATABASE_URL": url} if url else {}
    return subprocess.run([sys.executable, "-c", PREAMBLE + code], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "INCIDEX_DATA_DIR": str(data), **database})


def live_rows(data: Path) -> tuple[str, int]:
    with sqlite3.connect(data / "incident_analysis.db") as connection:
        verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
        return verdict, connection.execute("SELECT count(*) FROM analyses").fetchone()[0]


def live_state(settings: Settings) -> tuple[str, int, str]:
    """The live store's integrity verdict (SQLite; 'ok' on PostgreSQL, whose pages are not
    ours to check), its analyses and a digest of their ids and bodies."""
    from sqlalchemy import text

    with Store.open(settings) as store, store.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT analysis_id, content_hash FROM analyses ORDER BY analysis_id")).all()
    data = settings.data_dir
    verdict = live_rows(data)[0] if settings.database_url is None or \
        settings.database_url.startswith("sqlite") else "ok"
    digest = hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest()
    return verdict, len(rows), digest


def database_exists(settings: Settings, name: str) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.database_url or "")
    try:
        with engine.connect() as connection:
            return bool(connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                           {"n": name}).first())
    finally:
        engine.dispose()


def drop_database(settings: Settings, name: str) -> None:
    from sqlalchemy.engine import make_url

    from store.backup.restore import drop_postgres_database

    url = make_url(settings.database_url or "").set(database=name)
    drop_postgres_database(settings.model_copy(update={"database_url": url.render_as_string(
        hide_password=False)}))


KILL_POINTS = {
    "while compressing the copy": (
        "import store.backup.snapshots as s\n"
        "real = s.write_frames\n"
        "def dying(source, target, codec):\n"
        "    target.write_bytes(source.read_bytes()[:1000])\n"
        "    os._exit(9)\n"
        "s.write_frames = dying\n"),
    "after the manifest, before the rename": (
        "import store.backup.snapshots as s\n"
        "real = s._write_manifest\n"
        "def dying(work, manifest):\n"
        "    real(work, manifest)\n"
        "    os._exit(9)\n"
        "s._write_manifest = dying\n"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_backup_now_killed_lists_no_snapshot_and_leaves_the_store_untouched(
        isolated_directories: Path, database_url: str, point: str) -> None:
    settings = filled_store(isolated_directories, url=database_url)
    before = live_state(settings)
    killed = run_python(KILL_POINTS[point] + "Backups(Store.open(Settings())).now()\n",
                        isolated_directories, database_url)
    assert killed.returncode == 9, killed.stderr
    backups = isolated_directories / "backups"
    assert list_snapshots(backups) == []
    assert list((snapshots_directory(backups) / INCOMING).iterdir())  # the killed one's temp
    assert live_state(settings) == before and before[:2] == ("ok", 40)
    with Store.open(settings) as store:
        snapshot = Backups(store).now()
    assert snapshot.manifest["kind"] == ("sqlite" if "sqlite" in database_url else "postgresql")
    assert [s.snapshot_id for s in list_snapshots(backups)] == [snapshot.snapshot_id]
    assert verify_snapshot(snapshot) is None
    assert list((snapshots_directory(backups) / INCOMING).iterdir()) == []


def test_backup_now_killed_at_random_moments_never_lists_a_bad_snapshot(
        isolated_directories: Path, database_url: str) -> None:
    settings = filled_store(isolated_directories, 200, url=database_url)
    before = live_state(settings)
    for delay in (0.3, 0.6, 0.9, 1.2):
        process = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "backup", "now"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, "INCIDEX_DATABASE_URL": database_url,
                                            "INCIDEX_DATA_DIR": str(isolated_directories)})
        time.sleep(delay)
        process.kill()
        process.wait()
        for snapshot in list_snapshots(isolated_directories / "backups"):
            assert snapshot.good and verify_snapshot(snapshot) is None
    assert live_state(settings) == before and before[:2] == ("ok", 200)


def test_restore_killed_leaves_no_restored_store_and_the_live_one_untouched(
        isolated_directories: Path, tmp_path: Path) -> None:
    settings = filled_store(isolated_directories, 20)
    with Store.open(settings) as store:
        Backups(store).now()
        store.save_batch([("late", AnalysisIn.model_validate(make_record("LATE-1")))])
    before = live_rows(isolated_directories)
    target = tmp_path / "restored"
    killed = run_python(KILLED_RESTORE.format(into=repr(str(target))), isolated_directories)
    assert killed.returncode == 9, killed.stderr
    assert not target.exists()
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]) == 1
    assert live_rows(isolated_directories) == before
    with Store.open(settings) as store:
        report = Backups(store).restore(datetime.now(UTC), target)
    assert report.records_replayed == 1 and target.is_dir()


KILLED_RESTORE = """
import store.backup.restore as r
def dying(*a, **k):
    os._exit(9)
r._write_chunk = dying
from datetime import UTC, datetime
Backups(Store.open(Settings())).restore(datetime.now(UTC), {into})
"""


def test_a_postgres_restore_killed_leaves_no_restored_database_and_the_live_one_untouched(
        isolated_directories: Path, postgres_schema_url: str) -> None:
    settings = filled_store(isolated_directories, 20, url=postgres_schema_url)
    with Store.open(settings) as store:
        Backups(store).now()
        store.save_batch([("late", AnalysisIn.model_validate(make_record("LATE-1")))])
    before = live_state(settings)
    target = f"restore_{uuid.uuid4().hex[:10]}"
    try:
        killed = run_python(KILLED_RESTORE.format(into=repr(target)), isolated_directories,
                            postgres_schema_url)
        assert killed.returncode == 9, killed.stderr
        assert not database_exists(settings, target)
        assert database_exists(settings, f"{target}_partial")  # the killed one's work copy
        assert live_state(settings) == before and before[:2] == ("ok", 21)
        with Store.open(settings) as store:
            report = Backups(store).restore(datetime.now(UTC), target)
        assert report.records_replayed == 1 and database_exists(settings, target)
        assert not database_exists(settings, f"{target}_partial")
        with Store.open(report.settings, create=False) as restored:
            assert restored.summary().analyses == 21
    finally:
        drop_database(settings, target)
        drop_database(settings, f"{target}_partial")


def test_a_killed_postgres_restore_s_work_copy_is_dropped_by_the_next_drill(
        isolated_directories: Path, postgres_schema_url: str) -> None:
    settings = filled_store(isolated_directories, 5, url=postgres_schema_url)
    with Store.open(settings) as store:
        Backups(store).now()
    target = f"restore_{uuid.uuid4().hex[:10]}"
    try:
        killed = run_python(KILLED_RESTORE.format(into=repr(target)), isolated_directories,
                            postgres_schema_url)
        assert killed.returncode == 9, killed.stderr
        assert database_exists(settings, f"{target}_partial")
        with Store.open(settings) as store:
            drill = Backups(store).drill()
        assert drill.ok, drill.checks
        assert not database_exists(settings, f"{target}_partial")
    finally:
        drop_database(settings, f"{target}_partial")


def test_the_sweep_leaves_a_work_copy_whose_restore_still_runs(
        isolated_directories: Path, postgres_schema_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.backup.restore import PARTIAL_COMMENT, sweep_partial_databases

    settings = filled_store(isolated_directories, 1, url=postgres_schema_url)
    live = make_url(postgres_schema_url).database
    running, killed = (f"restore_{uuid.uuid4().hex[:10]}_partial" for _ in range(2))
    admin = create_engine(postgres_schema_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as holder, admin.connect() as connection:
            for name in (running, killed):
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                connection.execute(text(
                    f"COMMENT ON DATABASE \"{name}\" IS '{PARTIAL_COMMENT}{live}'"))
            # What a running restore holds (its own session), as _PostgresTarget does.
            holder.execute(text("SELECT pg_advisory_lock(hashtext(:key))"),
                           {"key": f"incidex-restore:{running}"})
            swept = sweep_partial_databases(settings)  # (others' killed copies may go too)
            assert killed in swept and running not in swept
            assert database_exists(settings, running)
            assert not database_exists(settings, killed)
    finally:
        admin.dispose()
        drop_database(settings, running)
        drop_database(settings, killed)


KILLED_DRILL = """
import store.backup.drill as d
chosen, names = d._scratch_target, []
def dying(*a, **k):
    print(names[-1], flush=True)
    os._exit(9)
def remember(*a, **k):
    names.append(chosen(*a, **k))
    return names[-1]
d._scratch_target = remember
d._check_restored = dying
Backups(Store.open(Settings())).drill()
"""


def drill_copies(settings: Settings) -> set[str]:
    from sqlalchemy import create_engine, text

    admin = create_engine(settings.database_url or "", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return set(connection.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'incidex_drill_%'"))
                .scalars())
    finally:
        admin.dispose()


def test_a_killed_postgres_drill_s_copy_is_dropped_by_the_next_sweep_and_a_running_one_kept(
        isolated_directories: Path, postgres_schema_url: str) -> None:
    """A drill killed between its restore and its cleanup left its scratch database on the
    server for ever; now the copy is marked and locked while its drill runs."""
    from sqlalchemy import create_engine, text

    from store.backup.restore import drill_lock_key, sweep_partial_databases

    settings = filled_store(isolated_directories, 5, url=postgres_schema_url)
    with Store.open(settings) as store:
        Backups(store).now()
    killed = run_python(KILLED_DRILL, isolated_directories, postgres_schema_url)
    assert killed.returncode == 9, killed.stderr
    name = killed.stdout.strip().splitlines()[-1]
    try:
        assert name.startswith("incidex_drill_") and name in drill_copies(settings)
        # The same copy while its drill still runs (its lock held elsewhere) is left.
        admin = create_engine(postgres_schema_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as holder:
                holder.execute(text("SELECT pg_advisory_lock(hashtext(:key))"),
                               {"key": drill_lock_key(name)})
                assert name not in sweep_partial_databases(settings)
                assert name in drill_copies(settings)
        finally:
            admin.dispose()
        with Store.open(settings) as store:
            drill = Backups(store).drill()  # its restore sweeps first
        assert drill.ok, drill.checks
        assert name not in drill_copies(settings)
        assert not (isolated_directories / "restores" / name).exists()
    finally:
        drop_database(settings, name)


def test_a_full_disk_during_backup_now_is_one_clear_error_and_the_store_keeps_working(
        isolated_directories: Path) -> None:
    filled_store(isolated_directories, 200)
    limited = run_python(
        "import resource, signal\n"
        "from store.errors import BackupFailed\n"
        "store = Store.open(Settings())\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))\n"
        "try:\n"
        "    Backups(store).now()\n"
        "except BackupFailed as error:\n"
        "    print(error)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))\n"
        "from store.schemas import AnalysisIn\n"
        "from tests.conftest import make_record\n"
        "print(store.save_analysis(AnalysisIn.model_validate(make_record('AFTER-1'))).status)\n"
        "store.close()\n", isolated_directories)
    assert limited.returncode == 0, limited.stderr
    message, status = limited.stdout.strip().splitlines()
    assert message.startswith("backup now: ") and "no snapshot was kept" in message
    assert "File too large" in message or "full" in message.lower(), message
    assert status == "saved"
    backups = isolated_directories / "backups"
    assert list_snapshots(backups) == []
    assert list((snapshots_directory(backups) / INCOMING).iterdir()) == []
    assert live_rows(isolated_directories) == ("ok", 201)


def test_a_writer_killed_mid_append_does_not_hide_the_next_batch(store: Store) -> None:
    store.save_batch([("a", AnalysisIn.model_validate(make_record("TORN-1")))])
    folder = journal_directory(store.backups)
    path = day_path(folder, journal_days(folder)[-1])
    with open(path, "ab") as handle:  # what a writer killed inside write() leaves
        handle.write(b'{"kind":"record","batch":"999999-0123456789abcdef","n":0,"at":"20')
    store.save_batch([("b", AnalysisIn.model_validate(make_record("TORN-2")))])
    found = scan(folder)
    assert found.damage == []
    assert len(found.notes) == 1 and "never committed" in found.notes[0]
    assert len([r for b in found.committed() for r in b.landed()]) == 2
    report = Backups(store).restore(datetime.now(UTC))
    assert report.records_replayed == 2 and report.warnings == found.notes
    if report.settings.database_url:
        from store.backup.restore import drop_postgres_database

        drop_postgres_database(report.settings)


def write_legacy(backups: Path, record: dict[str, Any], analysis_id: str) -> Path:
    """A per-analysis JSON backup as versions before the journal wrote them."""
    folder = backups / "2026-11" / "20"
    folder.mkdir(parents=True, exist_ok=True)
    document = {"analysis_id": analysis_id, "incident": record["incident"],
                "model_name": record["model_name"], "analysis": record["analysis"],
                "usage": record["usage"], "content_hash": "", "created_at":
                "2026-11-20T10:00:06+00:00"}
    path = folder / f"{record['incident']['incident_id']}.{analysis_id}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def test_legacy_files_fold_into_the_journal_once_and_replay(store: Store) -> None:
    from store.ingest.records import analysis_identity, canonical_json

    for n in range(3):
        record = make_record(f"OLD-{n}")
        _hash, analysis_id = analysis_identity(f"OLD-{n}", canonical_json(record["analysis"]))
        write_legacy(store.backups, record, analysis_id)
    backups = Backups(store)
    assert backups.status().legacy_files == 3
    assert backups.fold_legacy().folded == 3
    assert list(legacy_files(store.backups)) == []
    assert not (store.backups / "2026-11").exists()
    assert backups.fold_legacy().folded == 0
    assert len(journaled_ids(store.backups)) == 3
    report = backups.restore(datetime.now(UTC))
    with Store.open(report.settings, create=False) as restored:
        assert restored.summary().analyses == 3
    if report.settings.database_url:
        from store.backup.restore import drop_postgres_database

        drop_postgres_database(report.settings)
