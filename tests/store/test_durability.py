"""Several writers, a held lock, a killed process, an old schema: nothing lost or half-written."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_record
from tests.support.journal import journaled_ids

pytestmark = pytest.mark.slow


def write_jsonl(path: Path, prefix: str, count: int) -> Path:
    with path.open("w") as handle:
        for index in range(count):
            record = make_record(f"{prefix}-{index:04d}")
            record["analysis"]["index"] = index
            handle.write(json.dumps(record) + "\n")
    return path


def save_process(source: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", "--save", str(source)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **env})


def test_four_writers_at_once_lose_nothing(tmp_path: Path, isolated_directories: Path) -> None:
    sources = [write_jsonl(tmp_path / f"w{n}.jsonl", f"W{n}", 250) for n in range(4)]
    # Small batches make the writers interleave many transactions.
    writers = [save_process(source, INCIDEX_SAVE_BATCH_SIZE="20") for source in sources]
    outputs = [writer.communicate(timeout=300) for writer in writers]
    for writer, (stdout, stderr) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, stderr.decode()
        assert stdout.decode().count('"status": "saved"') == 250
    with sqlite3.connect(isolated_directories / "incident_analysis.db") as connection:
        counts = [connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("incidents", "analyses", "run_metadata")]
    assert counts == [1000, 1000, 1000]
    # Four processes appended to one journal file: every record once, no torn line.
    assert len(set(journaled_ids(isolated_directories / "backups"))) == 1000
    assert len(journaled_ids(isolated_directories / "backups")) == 1000


def test_a_held_write_lock_is_waited_for(tmp_path: Path, isolated_directories: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", "L", 3)
    assert save_process(source).wait(timeout=60) == 0  # creates the database
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(isolated_directories / 'incident_analysis.db')!r},"
         " isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(2);"
         " c.execute('COMMIT')\n"],
        stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
    started = time.monotonic()
    writer = save_process(write_jsonl(tmp_path / "more.jsonl", "M", 5))
    stdout, stderr = writer.communicate(timeout=60)
    waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert writer.returncode == 0, stderr.decode()
    assert stdout.decode().count('"status": "saved"') == 5
    assert waited > 1.0  # it really waited for the lock rather than failing


CRASHING_WRITER = """
import sys
from store.ingest.records import validate_record
from store.settings import Settings
from store.store import Store
from tests.conftest import make_record
store = Store.open(Settings(save_batch_size=int(sys.argv[1])))
store.save_analysis(validate_record(make_record("K-warm"), "warm"))
print("open", flush=True)
index = 0
while True:
    batch = []
    for _ in range(int(sys.argv[1])):
        record = make_record(f"K-{index:06d}")
        batch.append((f"r{index}", validate_record(record, "r")))
        index += 1
    store.save_many(batch)
"""


@pytest.mark.parametrize("batch_size", [1, 50])
def test_a_killed_writer_leaves_whole_records(batch_size: int, isolated_directories: Path) -> None:
    for attempt in range(3):
        writer = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(batch_size)],
                                  stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
        assert writer.stdout is not None and writer.stdout.readline() == b"open\n"
        time.sleep(random.Random(attempt).uniform(0.2, 0.8))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert_consistent(isolated_directories / "incident_analysis.db")


def assert_consistent(database: Path) -> None:
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        analyses = connection.execute("SELECT count(*) FROM analyses").fetchone()[0]
        assert analyses > 0
        orphans = connection.execute(
            "SELECT count(*) FROM analyses a LEFT JOIN incidents i USING (incident_id)"
            " WHERE i.id IS NULL").fetchone()[0]
        unmetered = connection.execute(
            "SELECT count(*) FROM analyses a LEFT JOIN run_metadata r USING (analysis_id)"
            " WHERE r.id IS NULL").fetchone()[0]
        stray_runs = connection.execute(
            "SELECT count(*) FROM run_metadata r LEFT JOIN analyses a USING (analysis_id)"
            " WHERE a.id IS NULL").fetchone()[0]
        unvectored = connection.execute(
            "SELECT count(*) FROM analyses a LEFT JOIN embeddings e ON e.analysis_pk = a.id"
            " WHERE e.analysis_pk IS NULL").fetchone()[0]
        miscounted = connection.execute(
            "SELECT count(*) FROM incidents i WHERE analysis_count !="
            " (SELECT count(*) FROM analyses a WHERE a.incident_id = i.incident_id)"
        ).fetchone()[0]
    assert (orphans, unmetered, stray_runs, unvectored, miscounted) == (0, 0, 0, 0, 0)


def test_an_older_database_upgrades_without_losing_rows(settings: Any) -> None:
    from sqlalchemy import text

    from store.db.engine import make_engine
    from store.db.migrate import current_revision, head_revision, upgrade
    from store.locations import database_url
    from store.store import Store

    engine = make_engine(database_url(settings))
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO incidents (incident_id, title, description, initial_findings,"
            " created_at, updated_at, analysis_count) VALUES ('OLD-1', 'Legacy beaconing',"
            " 'Host calls out to a C2 every 60 s', '', :t, :t, 1)"), {"t": "2026-01-02 03:04:05"})
        connection.execute(text(
            "INSERT INTO analyses (analysis_id, incident_id, model_name, analysis_json,"
            " content_hash, created_at) VALUES ('an-old', 'OLD-1', 'gpt-4o', '{\"a\": 1}',"
            " 'h', :t)"), {"t": "2026-01-02 03:04:05"})
    engine.dispose()
    with Store.open(settings) as store:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision() != "0001"
        assert store.summary().analyses == 1
        assert [r.incident_id for r in store.incidents_page(query="beaconing").rows] == ["OLD-1"]
        assert store.analyses("OLD-1")[0].analysis == {"a": 1}


def test_the_fast_head_check_matches_alembic() -> None:
    from store.db.migrate import HEAD_REVISION, head_revision

    assert head_revision() == HEAD_REVISION  # bump HEAD_REVISION with every new migration
