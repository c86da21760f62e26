"""A team on one database: concurrent writers sharing incidents, deadlocks retried, order kept."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text

from store.db.engine import WRITE_ATTEMPTS, run_write
from store.db.models import Analysis, Incident, RunMetadata
from store.ingest.records import validate_record
from store.settings import Settings
from store.store import Store
from tests.conftest import make_record

pytestmark = pytest.mark.slow

WRITERS = 4
INCIDENTS = 300
SHARED = 60  # records every writer saves, identical: exactly one copy may be stored


def writer_file(path: Path, writer: int) -> Path:
    """The same incidents as every other writer, in this writer's own order."""
    records = []
    for number in range(INCIDENTS):
        incident_id = f"TEAM-{number:04d}"
        record = make_record(incident_id)
        record["analysis"] = {"summary": f"writer {writer} on {incident_id}", "severity": "low"}
        record["usage"]["request_id"] = f"req-{writer}-{number}"
        records.append(record)
    for number in range(SHARED):
        records.append(make_record(f"TEAM-{number:04d}"))
    random.Random(writer).shuffle(records)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_writers_sharing_incidents_in_different_orders_all_save(
    tmp_path: Path, database_url: str, isolated_directories: Path
) -> None:
    sources = [writer_file(tmp_path / f"w{n}.jsonl", n) for n in range(WRITERS)]
    env = {**os.environ, "INCIDEX_DATABASE_URL": database_url,
           # Small batches make many transactions overlap in time.
           "INCIDEX_SAVE_BATCH_SIZE": "25", "INCIDEX_EMBED_ON_SAVE": "false"}
    # Create the schema first, so the writers race on rows, not on the migration.
    Store.open(Settings(data_dir=isolated_directories, database_url=database_url)).close()
    writers = [subprocess.Popen([sys.executable, "-m", "tui.cli", "--save", str(source)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
               for source in sources]
    outputs = [writer.communicate(timeout=600) for writer in writers]
    for writer, (stdout, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr.decode()[-2000:]
        statuses = [json.loads(line)["status"] for line in stdout.decode().splitlines()]
        assert len(statuses) == INCIDENTS + SHARED
        assert "error" not in statuses
    saved = sum(stdout.decode().count('"status": "saved"') for stdout, _ in outputs)
    assert saved == WRITERS * INCIDENTS + SHARED
    engine = create_engine(database_url)
    with engine.connect() as connection:
        incidents = connection.execute(select(func.count()).select_from(Incident)).scalar_one()
        analyses = connection.execute(select(func.count()).select_from(Analysis)).scalar_one()
        runs = connection.execute(select(func.count()).select_from(RunMetadata)).scalar_one()
        counted = connection.execute(select(func.sum(Incident.analysis_count))).scalar_one()
    engine.dispose()
    expected = WRITERS * INCIDENTS + SHARED
    assert (incidents, analyses, runs, counted) == (INCIDENTS, expected, expected, expected)


def test_a_deadlock_victim_is_tried_again(postgres_schema_url: str, isolated_directories: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(Settings(data_dir=isolated_directories, database_url=postgres_schema_url,
                                embed_on_save=False))
    records = [("a", validate_record(make_record("DL-A"), "a")),
               ("b", validate_record(make_record("DL-B"), "b"))]
    store.save_many(records)
    other = create_engine(postgres_schema_url)
    with other.connect() as connection:
        # The store waits first, so its deadlock check (1 s) fires before this one (20 s):
        # the store's transaction is the one PostgreSQL aborts.
        connection.execute(text("SET deadlock_timeout = '20s'"))
        connection.execute(text("UPDATE incidents SET title = 'held' WHERE incident_id = 'DL-B'"))
        again = [(label, validate_record(make_record(
            record.incident.incident_id, analysis={"summary": "second", "severity": "low"}),
            label)) for label, record in records]
        results: list[Any] = []
        saver = threading.Thread(target=lambda: results.extend(store.save_many(again)))
        caplog.set_level(logging.INFO, logger="incidex.store")
        saver.start()
        _wait_until_blocked(connection)
        # This closes the cycle: the store holds DL-A and waits for DL-B.
        connection.execute(text("UPDATE incidents SET title = 'held' WHERE incident_id = 'DL-A'"))
        connection.commit()
        saver.join(timeout=60)
    other.dispose()
    assert [result.status for result in results] == ["saved", "saved"]
    assert any("deadlock detected" in message for message in caplog.messages)
    assert [row.analysis_count for row in store.incidents_page().rows] == [2, 2]
    store.close()


def _wait_until_blocked(engine_connection: Any) -> None:
    """Return once another session of this database waits for a row lock."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = engine_connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar_one()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the store never waited for the held row")


texts = st.sampled_from(["", "first title", "second title", "third"])
minutes = st.integers(min_value=0, max_value=5)


@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["P-2", "P-1", "P-3"]), texts, minutes,
                          st.sampled_from(["low", "high"])), min_size=1, max_size=8))
def test_one_batch_ends_where_saving_one_by_one_ends(
    store: Any, rows: list[tuple[str, str, int, str]]
) -> None:
    records = []
    for number, (incident_id, title, minute, severity) in enumerate(rows):
        record = make_record(incident_id, analysis={"summary": f"n{number}",
                                                    "severity": severity})
        record["incident"]["title"] = title
        record["usage"]["end_time"] = f"2026-11-20T10:{minute:02d}:06Z"
        records.append((f"line {number}", validate_record(record, f"line {number}")))
    _clear(store)
    store.save_many(records)
    batched = _incidents(store)
    _clear(store)
    for label, record in records:
        store.save_analysis(record, label)
    assert _incidents(store) == batched


def _clear(store: Any) -> None:
    with store.engine.begin() as connection:
        for table in ("embeddings", "run_metadata", "analyses", "incidents"):
            connection.execute(text(f"DELETE FROM {table}"))


def _incidents(store: Any) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(
            Incident.incident_id, Incident.title, Incident.created_at, Incident.updated_at,
            Incident.analysis_count, Incident.latest_severity, Incident.latest_analysis_at,
        ).order_by(Incident.incident_id))]


def deadlock() -> Any:
    """The error SQLAlchemy raises when PostgreSQL picks this transaction as a deadlock victim."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE incidents ...", {}, psycopg.errors.DeadlockDetected(
        "deadlock detected"))


@pytest.mark.parametrize("failures", [1, WRITE_ATTEMPTS - 1, WRITE_ATTEMPTS])
def test_retries_are_bounded_and_each_attempt_is_all_or_nothing(
    store: Any, failures: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store.db import engine as engine_module
    from store.errors import StoreUnavailable

    monkeypatch.setattr(engine_module, "RETRY_FIRST_DELAY_SECONDS", 0.001)
    attempts = []

    def work(connection: Any) -> str:
        attempts.append(1)
        connection.execute(text(
            "INSERT INTO incidents (incident_id, title, description, initial_findings, "
            "created_at, updated_at, analysis_count) VALUES (:id, '', '', '', :t, :t, 0)"),
            {"id": f"R-{len(attempts)}", "t": "2026-11-20 10:00:00"})
        if len(attempts) <= failures:
            raise deadlock()
        return "done"

    if failures >= WRITE_ATTEMPTS:
        with pytest.raises(StoreUnavailable, match=f"deadlock detected .after {WRITE_ATTEMPTS}"):
            run_write(store.engine, work)
    else:
        assert run_write(store.engine, work) == "done"
    assert len(attempts) == min(failures + 1, WRITE_ATTEMPTS)
    with store.engine.connect() as connection:
        kept = connection.execute(text("SELECT incident_id FROM incidents")).scalars().all()
    assert kept == ([] if failures >= WRITE_ATTEMPTS else [f"R-{failures + 1}"])


def test_an_error_that_is_no_conflict_is_not_retried(store: Any) -> None:
    from sqlalchemy.exc import IntegrityError

    attempts = []

    def work(connection: Any) -> None:
        attempts.append(1)
        connection.execute(text("INSERT INTO incidents (incident_id) VALUES (NULL)"))

    with pytest.raises(IntegrityError):
        run_write(store.engine, work)
    assert len(attempts) == 1
