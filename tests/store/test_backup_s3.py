"""A bucket mirror (s3://bucket/prefix) on a real S3-compatible server on 127.0.0.1: every
copy checked, `backup list` shows the copies, and with the primary backups folder deleted the
bucket alone restores and drills, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from store.backup.journal import day_path, journal_days, journal_directory
from store.backup.restore import drop_postgres_database
from store.backup.s3 import S3Mirror
from store.backup.service import Backups
from store.errors import BackupFailed
from store.schemas import AnalysisIn
from store.store import Store
from tests.conftest import make_record
from tests.support.s3_server import BUCKET, S3Server, s3_server

MIRROR = f"s3://{BUCKET}/team-a/incidex"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    with s3_server(monkeypatch) as running:
        yield running


@pytest.fixture
def mirrored(settings: Any, server: S3Server) -> Iterator[Store]:
    with Store.open(settings.model_copy(update={
            "backup_mirrors": (MIRROR,), "backup_s3_endpoint": server.endpoint})) as store:
        yield store


def save(store: Store, *incident_ids: str) -> datetime:
    results = store.save_batch([(i, AnalysisIn.model_validate(make_record(i)))
                                for i in incident_ids])
    assert {r.status for r in results} == {"saved"}, results
    moment = datetime.now(UTC)
    time.sleep(0.002)
    return moment


def test_losing_the_primary_backup_folder_loses_nothing_with_a_bucket_mirror(
        mirrored: Store, server: S3Server) -> None:
    store = mirrored
    backups = Backups(store)
    save(store, "S3-1", "S3-2")
    snapshot = backups.now()
    assert backups.mirror_problems == []
    [bucket] = backups.copies(snapshot)
    assert str(bucket) == MIRROR
    last = save(store, "S3-3")  # after the snapshot: the journal carries it
    assert backups.sync() == []
    folder = journal_directory(store.backups)
    for day in journal_days(folder):
        assert [str(m) for m in backups.journal_copies(day_path(folder, day))] == [MIRROR]
    keys = [o["Key"] for o in server.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(key.startswith("team-a/incidex/") for key in keys)
    assert f"team-a/incidex/snapshots/{snapshot.snapshot_id}/manifest.json" in keys
    wanted = {a.analysis_id for i in ("S3-1", "S3-2", "S3-3") for a in store.analyses(i)}
    shutil.rmtree(store.backups)
    report = backups.restore(last, source=MIRROR)
    try:
        assert report.snapshot_id == snapshot.snapshot_id
        with Store.open(report.settings, create=False) as restored:
            assert {a.analysis_id for i in ("S3-1", "S3-2", "S3-3")
                    for a in restored.analyses(i)} == wanted
    finally:
        if report.settings.database_url:
            drop_postgres_database(report.settings)
    drill = backups.drill(source=MIRROR)
    assert drill.ok, drill.checks


def test_a_changed_object_in_the_bucket_is_named_and_not_restored(
        mirrored: Store, server: S3Server) -> None:
    backups = Backups(mirrored)
    save(mirrored, "S3-9")
    snapshot = backups.now()
    [name] = [n for n in snapshot.manifest["files"] if n.startswith("database")]
    key = f"team-a/incidex/snapshots/{snapshot.snapshot_id}/{name}"
    held = server.client.get_object(Bucket=BUCKET, Key=key)
    data = bytearray(held["Body"].read())
    data[len(data) // 2] ^= 0xFF
    server.client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data),
                             Metadata=held["Metadata"])
    with pytest.raises(BackupFailed, match=f"{name}: does not match its checksum"):
        backups.restore(datetime.now(UTC), source=MIRROR)


def test_an_unreachable_bucket_is_a_mirror_problem_and_the_snapshot_is_kept(
        settings: Any, server: S3Server) -> None:
    away = settings.model_copy(update={"backup_mirrors": ("s3://no-such-bucket-here/x",),
                                       "backup_s3_endpoint": server.endpoint})
    with Store.open(away) as store:
        backups = Backups(store)
        save(store, "S3-5")
        snapshot = backups.now()
        assert snapshot.good
        [problem] = backups.mirror_problems
        assert problem.startswith("mirror s3://no-such-bucket-here/x: ")
        assert backups.copies(snapshot) == []


def test_backup_list_shows_the_bucket_copies(isolated_directories: Any,
                                             server: S3Server) -> None:
    environment = {**os.environ, "INCIDEX_BACKUP_MIRRORS": json.dumps([MIRROR])}
    source = isolated_directories.parent / "in.jsonl"
    source.write_text(json.dumps(make_record("S3-CLI")) + "\n")

    def incidex(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tui.cli", *arguments],
                              capture_output=True, text=True, timeout=300, env=environment)

    assert incidex("--save", str(source)).returncode == 0
    taken = incidex("backup", "now")
    assert taken.returncode == 0, taken.stderr
    listed = incidex("backup", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("snapshot ") and line.endswith(f"copies: primary, {MIRROR}")
               for line in lines), listed.stdout
    assert any(line.startswith("journal ") and line.endswith(f"copies: primary, {MIRROR}")
               for line in lines), listed.stdout
    as_json = json.loads(incidex("backup", "list", "--json").stdout)
    assert MIRROR in as_json["mirrors"]


def test_a_bucket_location_names_its_bucket_and_prefix() -> None:
    mirror = S3Mirror.parse("s3://bucket-one/a/b/")
    assert (mirror.bucket, mirror.prefix, str(mirror)) == ("bucket-one", "a/b",
                                                           "s3://bucket-one/a/b")
    with pytest.raises(BackupFailed, match="no bucket"):
        S3Mirror.parse("s3:///x")
