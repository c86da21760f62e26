"""Encryption at rest and purging, on SQLite and PostgreSQL: no marker secret in clear under the
data directory or in Redis, nothing left of it after `forget`, clear errors for bad keys."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from store.crypto import KeyUnavailable
from store.ingest.records import validate_record
from store.settings import Settings
from store.store import Store
from tests.conftest import REPO_ROOT, make_record
from tests.support.redis_server import RedisServer

EMAIL = "marker.victim@contoso-secret.example"
PASSWORD = "Tr0ub4dor&3-marker"


def secret_record(incident_id: str = "INC-SECRET") -> dict[str, Any]:
    record = make_record(incident_id)
    record["incident"]["description"] = f"Phish sent to {EMAIL}; the user typed {PASSWORD}"
    record["analysis"] = {"summary": f"Credentials of {EMAIL} exposed ({PASSWORD})",
                          "severity": "critical", "iocs": ["185.220.101.4"]}
    return record


def save(store: Store, record: dict[str, Any], label: str = "line 1") -> Any:
    return store.save_analysis(validate_record(record, label), label)


def files_holding(directory: Path, needles: list[bytes]) -> list[str]:
    """Every file under directory whose raw bytes hold any needle."""
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(needle in content for needle in needles):
                found.append(str(path))
    return found


MARKERS = [EMAIL.encode(), PASSWORD.encode(), EMAIL.encode("utf-16-le")]


def test_saved_secrets_are_nowhere_in_clear_under_the_data_directory(
        store: Store, isolated_directories: Path) -> None:
    save(store, secret_record())
    save(store, make_record("INC-OTHER"), "line 2")
    store.similar(incident_id="INC-SECRET")
    store.refresh_index_snapshot()
    # The store stays open: SQLite's WAL and the FTS tables are on disk and read too.
    assert files_holding(isolated_directories, MARKERS) == []
    detail = store.incident("INC-SECRET")
    assert detail is not None and EMAIL in detail.description
    assert PASSWORD in store.analyses("INC-SECRET")[0].analysis["summary"]


def test_a_private_redis_holds_no_secret_in_clear(database_url: str, tmp_path: Path,
                                                  isolated_directories: Path) -> None:
    import redis

    with RedisServer(tmp_path / "redis") as server:
        settings = Settings(data_dir=isolated_directories, database_url=database_url,
                            redis_url=server.url)
        with Store.open(settings) as opened:
            save(opened, secret_record())
            save(opened, make_record("INC-OTHER"), "line 2")
            opened.similar(incident_id="INC-OTHER")
            opened.similar(text=f"credentials of {EMAIL}")
        client = redis.Redis.from_url(server.url)
        keys = list(client.scan_iter(count=1000))
        assert keys, "the similar search cached nothing in Redis"
        for key in keys:
            kind = client.type(key)
            values = [client.dump(key) or b""] if kind != b"none" else []
            for blob in [key, *values]:
                assert not any(marker in blob for marker in MARKERS), key
        client.close()


def test_forget_leaves_nothing_of_the_incident(store: Store, isolated_directories: Path,
                                               tmp_path: Path) -> None:
    save(store, secret_record())
    save(store, make_record("INC-OTHER"), "line 2")
    store.similar(incident_id="INC-OTHER")
    store.refresh_index_snapshot()
    kept_copy = tmp_path / "old-journal"
    shutil.copytree(isolated_directories / "backups" / "journal", kept_copy)
    assert _journal_incidents(store, kept_copy) == ({"INC-SECRET", "INC-OTHER"}, 0)
    sealed_text = _stored_description(store, "INC-SECRET")
    before = store.summary()

    report = store.forget(["INC-SECRET"])

    assert (report.incidents, report.analyses, report.embeddings, report.backups) == (1, 1, 1, 1)
    assert report.data_keys >= 1
    after = store.summary()
    assert after.incidents == before.incidents - 1
    assert after.analyses == before.analyses - 1
    assert store.incident("INC-SECRET") is None
    # The copy outlived the purge, its key did not; the other incident's body still opens.
    assert _journal_incidents(store, kept_copy) == ({"INC-OTHER"}, 1)
    hits = store.similar(text=f"credentials of {EMAIL} exposed").hits
    assert all(hit.incident_id != "INC-SECRET" for hit in hits)
    sealed_bytes = sealed_text.encode()
    assert files_holding(isolated_directories, [*MARKERS, sealed_bytes[:60]]) == []
    with store.engine.connect() as connection:
        tombstone = connection.execute(text(
            "SELECT incident_hash, purged_by, analyses FROM purge_tombstones")).one()
        usage = connection.execute(text(
            "SELECT count(*) FROM run_metadata WHERE incident_id IS NULL")).scalar_one()
    assert "INC-SECRET" not in tombstone.incident_hash and tombstone.analyses == 1
    assert usage == 1  # the call's tokens and cost stay, without the link
    assert store.check_keys().problems == []


def _stored_description(store: Store, incident_id: str) -> str:
    with store.engine.connect() as connection:
        return str(connection.execute(text(
            "SELECT description FROM incidents WHERE incident_id = :i"),
            {"i": incident_id}).scalar_one())


def test_the_list_filter_finds_exact_words_of_sealed_text(store: Store) -> None:
    save(store, secret_record())
    ransom = make_record("RW-77", analysis={"summary": "lockbit note found", "severity": "high"})
    ransom["incident"]["title"] = "Ransomware on file server"
    save(store, ransom, "line 2")
    def ids(query):
        return [row.incident_id for row in store.incidents_page(query=query).rows]
    assert ids("lockbit") == ["RW-77"]  # a word of an analysis
    assert ids(EMAIL) == ["INC-SECRET"]  # an IOC of the description, as all its words
    assert ids("185.220.101.4") == ["INC-SECRET"]
    assert ids("Ransom") == ["RW-77"]  # prefixes match titles
    assert ids("lockb") == []  # ... but never sealed text: only whole words are indexed
    assert ids('"file server"') == ["RW-77"]
    assert store.count_incidents("phishing OR lockbit") == 2


def test_content_hash_is_keyed(store: Store) -> None:
    import hashlib

    save(store, secret_record())
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT content_hash FROM analyses")).scalar_one()
    document = store.analyses("INC-SECRET")[0].analysis
    from store.ingest.records import canonical_json

    assert stored != hashlib.sha256(canonical_json(document).encode()).hexdigest()


def _journal_incidents(store: Store, journal: Path) -> tuple[set[str], int]:
    """The incidents whose journal bodies open with the store's keyring, and how many bodies
    are forgotten (their data key deleted); the journal must hold no damage."""
    from store.backup.journal import open_all, scan
    from store.errors import BodyForgotten

    found = scan(journal, sealer=store.journal.sealer)
    assert found.damage == []
    records = [r for b in found.batches.values() for r in b.records]
    forgotten, problems = open_all(records)
    assert problems == []
    opened = set()
    for record in records:
        try:
            opened.add(record.body["incident"]["incident_id"])
        except BodyForgotten:
            continue
    return opened, forgotten


def test_journal_lines_keep_ids_in_clear_and_seal_the_body(
        store: Store, isolated_directories: Path) -> None:
    result = save(store, secret_record())
    journal = isolated_directories / "backups" / "journal"
    (day,) = journal.glob("*.jsonl")
    record = [line for line in day.read_text().splitlines() if '"kind":"record"' in line][0]
    assert f'"analysis_id":"{result.analysis_id}"' in record
    assert '"incident_id":"INC-SECRET"' in record and '"codec":"incident-key"' in record
    assert "Phish" not in record and "summary" not in record


def test_a_body_moved_to_another_analysis_does_not_open(store: Store) -> None:
    sealer = store.journal.sealer
    assert sealer is not None
    ((_key, blob),) = sealer.seal_bodies([("INC-SECRET", "an-1", b'{"x": 1}')])
    assert sealer.open_body("INC-SECRET", "an-1", blob) == b'{"x": 1}'
    with pytest.raises(ValueError, match="INC-SECRET") as error:
        sealer.open_body("INC-SECRET", "an-2", blob)
    assert not isinstance(error.value, KeyUnavailable)


def test_a_clear_store_journals_clear_bodies(settings: Settings,
                                             isolated_directories: Path) -> None:
    with Store.open(settings.model_copy(update={"encrypt_at_rest": False})) as clear_store:
        save(clear_store, secret_record())
    assert files_holding(isolated_directories / "backups" / "journal", MARKERS)


def test_a_restore_skips_forgotten_incidents_and_counts_them(store: Store) -> None:
    from datetime import UTC, datetime

    from store.backup.restore import drop_postgres_database
    from store.backup.service import Backups

    save(store, secret_record())
    save(store, make_record("INC-OTHER"), "line 2")
    store.forget(["INC-SECRET"])
    report = Backups(store).restore(datetime.now(UTC))
    try:
        assert (report.records_replayed, report.records_forgotten) == (1, 1)
        assert report.warnings == []
        with Store.open(report.settings, create=False) as restored:
            assert restored.incident("INC-SECRET") is None
            detail = restored.incident("INC-OTHER")
            assert detail is not None and detail.unreadable is None
            assert restored.keys_status().clear_rows == 0  # replayed rows are sealed again
            assert restored.check_keys().problems == []
    finally:
        if report.settings.database_url:
            drop_postgres_database(report.settings)


def test_a_drill_after_forget_passes_with_nothing_of_the_forgotten_incident(store: Store
                                                                           ) -> None:
    """The snapshot taken before the forget holds the incident's sealed rows; the journal's
    forget line, replayed, erases them from the drill's copy, so every check passes."""
    from store.backup.service import Backups

    backups = Backups(store)
    save(store, secret_record())
    save(store, make_record("INC-OTHER"), "line 2")
    backups.now()  # the snapshot still holds INC-SECRET's sealed rows
    save(store, make_record("INC-LATER"), "line 3")
    store.forget(["INC-SECRET"])
    drill = backups.drill()
    checks = {name: (ok, detail) for name, ok, detail in drill.checks}
    assert drill.ok, checks
    assert "1 forgotten incidents erased" in checks["restore"][1]
    assert "forgotten since the snapshot" not in checks["keys"][1]  # none came back
    assert checks["journal"][0] and "1 records of forgotten incidents" in checks["journal"][1]
    backups.now()
    assert backups.drill().ok


def test_a_journal_under_a_wrong_key_fails_the_restore_naming_line_and_key(
        store: Store, settings: Settings) -> None:
    from datetime import UTC, datetime

    from store.backup.service import Backups
    from store.errors import BackupFailed

    save(store, secret_record())
    kek = _kek_file(store)
    store.close()
    kek.write_text(os.urandom(32).hex() + "\n")
    with _reopen(settings) as reopened, pytest.raises(BackupFailed) as failed:
        Backups(reopened).restore(datetime.now(UTC))
    message = str(failed.value)
    assert "\n" not in message and ".jsonl line 2" in message
    assert kek.stem in message and "does not unwrap data key" in message


def _kek_file(store: Store) -> Path:
    primary = store.cipher.keyring.primary_id()
    return store.cipher.keyring.directory / f"{primary}.key"


def _reopen(settings: Settings) -> Store:
    return Store.open(settings)


def test_a_wrong_key_is_one_clear_line_naming_it(store: Store, settings: Settings) -> None:
    save(store, secret_record())
    kek = _kek_file(store)
    store.close()
    kek.write_text(os.urandom(32).hex() + "\n")
    with _reopen(settings) as reopened:
        detail = reopened.incident("INC-SECRET")
        assert detail is not None and detail.description == ""
        assert detail.unreadable is not None and kek.stem in detail.unreadable
        assert "\n" not in detail.unreadable
        assert reopened.analyses("INC-SECRET")[0].unreadable is not None
        assert reopened.check_keys().problems


def test_a_missing_key_is_one_clear_line_naming_it(store: Store, settings: Settings) -> None:
    save(store, secret_record())
    kek = _kek_file(store)
    store.close()
    kek.unlink()
    with _reopen(settings) as reopened:
        detail = reopened.incident("INC-SECRET")
        assert detail is not None and detail.unreadable is not None
        assert f"key {kek.stem}: missing from the keyring" in detail.unreadable
        problems = reopened.check_keys().problems
        assert problems and all(kek.stem in problem for problem in problems[:1])


def test_a_truncated_value_is_a_clear_error(store: Store) -> None:
    save(store, secret_record())
    sealed = _stored_description(store, "INC-SECRET")
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE incidents SET description = :d WHERE incident_id = "
                                "'INC-SECRET'"), {"d": sealed[:40]})
    detail = store.incident("INC-SECRET")
    assert detail is not None and detail.unreadable is not None
    assert "incidents.description of INC-SECRET" in detail.unreadable
    assert store.check_keys().problems


def test_a_value_moved_to_another_row_does_not_open(store: Store) -> None:
    save(store, secret_record())
    save(store, make_record("INC-OTHER"), "line 2")
    sealed = _stored_description(store, "INC-SECRET")
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE incidents SET description = :d WHERE incident_id = "
                                "'INC-OTHER'"), {"d": sealed})
        connection.execute(text("UPDATE analyses SET analysis_json = (SELECT analysis_json "
                                "FROM analyses WHERE incident_id = 'INC-SECRET') "
                                "WHERE incident_id = 'INC-OTHER'"))
    detail = store.incident("INC-OTHER")
    assert detail is not None and detail.unreadable is not None
    assert "does not decrypt with data key" in detail.unreadable
    assert store.analyses("INC-OTHER")[0].unreadable is not None
    assert len(store.check_keys().problems) == 2


def test_the_codec_seals_for_a_backup_journal(store: Store) -> None:
    save(store, secret_record())
    codec = store.cipher.codec("INC-SECRET")
    blob = codec.seal(b"journal line", b"journal/2026-11-28/1")
    assert codec.open_sealed(blob, b"journal/2026-11-28/1") == b"journal line"
    with pytest.raises(KeyUnavailable):
        codec.open_sealed(blob, b"journal/2026-11-28/2")
    with pytest.raises(KeyUnavailable, match="truncated"):
        codec.open_sealed(blob[:20], b"journal/2026-11-28/1")


def test_encrypt_store_seals_a_clear_text_store_in_place(settings: Settings,
                                                         isolated_directories: Path) -> None:
    clear_settings = settings.model_copy(update={"encrypt_at_rest": False})
    with Store.open(clear_settings) as clear_store:
        save(clear_store, secret_record())
        save(clear_store, make_record("INC-OTHER"), "line 2")
        assert EMAIL in _stored_description(clear_store, "INC-SECRET")
    with Store.open(settings) as sealed_store:
        assert sealed_store.keys_status().clear_rows == 4
        journal = isolated_directories / "backups" / "journal"
        assert files_holding(journal, MARKERS)
        assert sealed_store.encrypt_store() == 2
        assert sealed_store.encrypt_store() == 0  # resumable: nothing left the second time
        # The database and WAL are sealed; the append-only journal keeps its clear lines
        # (encrypt-store says how many), and lines written from now on are sealed.
        assert set(files_holding(isolated_directories, MARKERS)) == {
            str(path) for path in journal.glob("*.jsonl")}
        assert sealed_store.clear_journal_records() == 2
        save(sealed_store, make_record("INC-LATER"), "line 3")
        assert sealed_store.clear_journal_records() == 2
        assert EMAIL not in _stored_description(sealed_store, "INC-SECRET")
        detail = sealed_store.incident("INC-SECRET")
        assert detail is not None and EMAIL in detail.description
        assert sealed_store.keys_status().clear_rows == 0
        assert [r.incident_id for r in sealed_store.incidents_page(query="typed").rows] == [
            "INC-SECRET"]
        assert sealed_store.check_keys().problems == []


SAVER = textwrap.dedent("""
    import sys, time
    from store.ingest.records import validate_record
    from store.settings import Settings
    from store.store import Store
    from tests.conftest import make_record
    settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2])
    with Store.open(settings) as store:
        deadline = time.monotonic() + float(sys.argv[3])
        n = 0
        while time.monotonic() < deadline:
            record = make_record(f"CONC-{n % 40}", analysis={"summary": f"run {n} secret"})
            store.save_analysis(validate_record(record, f"line {n}"), f"line {n}")
            n += 1
    print(n)
""")


def test_rotation_with_reencrypt_while_another_process_saves(
        store: Store, settings: Settings, isolated_directories: Path) -> None:
    for number in range(30):
        save(store, make_record(f"INC-{number}"), f"line {number}")
    first_key = store.cipher.keyring.primary_id()
    store.rotate_keys()
    for number in range(30, 40):
        save(store, make_record(f"INC-{number}"), f"line {number}")
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(isolated_directories), settings.database_url or "",
         "6"], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    time.sleep(1.5)
    second_key = store.rotate_keys()
    store.reencrypt()
    saved, errors = saver.communicate(timeout=120)
    assert saver.returncode == 0, errors.decode()[-2000:]
    assert int(saved) > 0
    store.rotate_keys()  # a saver that began before the rotation may have wrapped with it
    assert store.check_keys().problems == []
    for key_id in (first_key, second_key):
        assert key_id is not None
        store.retire_key(key_id)
    reopened = Store.open(settings)
    try:
        report = reopened.check_keys()
        assert report.problems == [] and report.rows_checked > 80
        assert all(not r.unreadable for r in reopened.analyses("CONC-3"))
    finally:
        reopened.close()


def test_reencrypt_resumes_after_a_kill(store: Store, settings: Settings) -> None:
    for number in range(450):
        save(store, make_record(f"INC-{number}"), f"line {number}")
    store.rotate_keys()
    killed = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import os, sys
            from store.settings import Settings
            from store.store import Store
            store = Store.open(Settings(data_dir=sys.argv[1], database_url=sys.argv[2]))
            store.reencrypt(lambda done, total: os.kill(os.getpid(), 9) if done >= 200 else None)
        """), str(settings.data_dir), settings.database_url or ""],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert killed.wait(timeout=120) == -9
    checkpoint = store.cipher.keyring.directory / "reencrypt.checkpoint"
    assert checkpoint.exists()
    assert store.reencrypt() == 450
    assert not checkpoint.exists()
    assert store.check_keys().problems == []


def test_retention_lists_and_purges_by_severity(store: Store, settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    old = make_record("OLD-LOW", analysis={"summary": "x", "severity": "low"})
    old["usage"]["start_time"] = "2025-01-01T00:00:00Z"
    old["usage"]["end_time"] = "2025-01-01T00:00:01Z"
    save(store, old)
    keep = make_record("OLD-CRIT", analysis={"summary": "y", "severity": "critical"})
    keep["usage"]["start_time"] = "2025-01-01T00:00:00Z"
    keep["usage"]["end_time"] = "2025-01-01T00:00:01Z"
    save(store, keep, "line 2")
    save(store, make_record("NEW"), "line 3")
    policy = settings.model_copy(update={"retention_days": 90,
                                         "retention_days_by_severity": {"critical": 3650}})
    with Store.open(policy) as governed:
        due = governed.purge_candidates(now=datetime.now(UTC) + timedelta(days=1))
        assert [candidate.incident_id for candidate in due] == ["OLD-LOW"]
        report = governed.forget([c.incident_id for c in due], reason="retention")
        assert report.incidents == 1
        assert governed.incident("OLD-LOW") is None
        assert governed.incident("OLD-CRIT") is not None


def test_the_keyring_refuses_the_data_directory(isolated_directories: Path) -> None:
    from store.errors import StoreError

    settings = Settings(data_dir=isolated_directories,
                        secrets_dir=isolated_directories / "secrets")
    with pytest.raises(StoreError, match="outside the data directory"):
        Store.open(settings)


def test_key_files_are_private(store: Store) -> None:
    save(store, secret_record())
    keyring = store.cipher.keyring.directory
    assert keyring.stat().st_mode & 0o777 == 0o700
    for path in [*keyring.iterdir(), store.cipher.datakeys_path]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o600, path


def test_an_environment_key_can_be_the_primary(settings: Settings) -> None:
    material = os.urandom(32).hex()
    from pydantic import SecretStr

    configured = settings.model_copy(update={"encryption_key": SecretStr(f"env-1:{material}")})
    with Store.open(configured) as opened:
        save(opened, secret_record())
        assert opened.keys_status().keys[0].key_id == "env-1"
        detail = opened.incident("INC-SECRET")
        assert detail is not None and EMAIL in detail.description


def test_incidex_keys_and_forget_from_the_command_line(isolated_directories: Path,
                                                       tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    import json

    source.write_text(json.dumps(secret_record()))
    incidex = [sys.executable, "-m", "tui.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*incidex, *args], capture_output=True, timeout=120,
                              cwd=REPO_ROOT)

    assert run("--save", str(source)).returncode == 0
    status = run("keys", "status")
    assert status.returncode == 0 and b"primary" in status.stdout
    assert run("keys", "check").returncode == 0
    for key_file in (tmp_path / "secrets" / "keyring").glob("*.key"):
        key_file.unlink()
    broken = run("keys", "check")
    assert broken.returncode == 1
    assert b"missing from the keyring" in broken.stderr and b"Traceback" not in broken.stderr
    forgotten = run("forget", "INC-SECRET", "NOPE")
    assert forgotten.returncode == 1
    assert b"NOPE: no such incident" in forgotten.stderr
    assert b"1 incidents purged" in forgotten.stderr


def test_sealed_text_is_base64_of_a_versioned_header(store: Store) -> None:
    save(store, secret_record())
    sealed = _stored_description(store, "INC-SECRET")
    assert sealed.startswith("ix1:")
    blob = base64.b64decode(sealed[4:])
    assert blob[0] == 1 and len(blob) > 29 + 16


def test_reads_work_while_encrypt_store_runs_in_another_process(
        settings: Settings, isolated_directories: Path) -> None:
    clear_settings = settings.model_copy(update={"encrypt_at_rest": False})
    with Store.open(clear_settings) as clear_store:
        clear_store.save_many((f"line {n}", validate_record(make_record(f"INC-{n}"), "x"))
                              for n in range(600))
    sealer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from store.settings import Settings
            from store.store import Store
            with Store.open(Settings(data_dir=sys.argv[1], database_url=sys.argv[2])) as s:
                print(s.encrypt_store())
        """), str(settings.data_dir), settings.database_url or ""],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    reads = 0
    with Store.open(settings) as reader:
        while sealer.poll() is None or reads == 0:
            detail = reader.incident(f"INC-{reads * 37 % 600}")
            assert detail is not None and detail.unreadable is None
            assert "fake invoice" in detail.description
            assert reader.count_incidents("INC") == 600
            reads += 1
        assert sealer.wait(timeout=120) == 0
        assert int(sealer.communicate()[0]) == 600
        assert reader.keys_status().clear_rows == 0
    assert reads > 1


def test_a_lost_or_other_blind_index_key_is_refused_not_made_anew(store: Store,
                                                                  settings: Settings) -> None:
    # A new key would leave every stored search term, indicator token and content hash
    # unmatched without a word: the store remembers which key made them.
    from store.db.identity import store_identity

    save(store, make_record("KEY-1"))
    path = store.cipher.keyring.index_key_path
    original = path.read_bytes()
    with store.engine.connect() as connection:
        recorded = store_identity(connection).index_key_fingerprint
    assert recorded and original.decode().strip() not in recorded
    store.close()

    path.unlink()
    with Store.open(settings) as reopened, pytest.raises(
            KeyUnavailable, match=r"index\.hmac: the blind-index key is missing.*"
                                  f"fingerprint {recorded}.*restore the keyring"):
        save(reopened, make_record("KEY-2"), "line 2")
    assert not path.exists()  # not made anew

    path.write_bytes(b"ab" * 32 + b"\n")
    path.chmod(0o600)
    with Store.open(settings) as reopened, pytest.raises(
            KeyUnavailable, match=rf"is not the one .* \(fingerprint {recorded}\)"):
        save(reopened, make_record("KEY-2"), "line 2")

    path.write_bytes(original)
    with Store.open(settings) as reopened:
        save(reopened, make_record("KEY-2"), "line 2")
        assert reopened.incident("KEY-2") is not None
