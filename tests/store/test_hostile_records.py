"""No record sinks the others, no input stalls the stream, and backups stay honest."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import make_record
from tests.support.journal import journaled_ids


def save_lines(store: Any, payload: bytes) -> list[Any]:
    from store.ingest.stream import iter_save

    return list(iter_save(store, io.BytesIO(payload), batch_size=50))


def test_near_2_63_tokens_are_refused_and_usage_totals_still_add_up(store: Any) -> None:
    huge = [{**make_record(f"H-{n}"), "usage": {"input_tokens": 2**62, "output_tokens": 2**62}}
            for n in range(2)]
    payload = b"".join(json.dumps(r).encode() + b"\n" for r in [*huge, make_record("OK-1")])
    events = save_lines(store, payload)
    assert [e.result.status for e in events] == ["error", "error", "saved"]
    assert "usage.input_tokens: input should be less than or equal to" in str(
        events[0].result.error)
    assert [total.input_tokens for total in store.usage_by_model()] == [1200]


# Fuzzed records: whatever a record holds, it gets one event, and the others are saved.

HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                   blacklist_categories=()), max_size=20),
    st.sampled_from(["1e999", "-1e999", "NaN", "[" * 1200 + "]" * 1200, '{"a":' * 900 + "1"
                     + "}" * 900, "1" * 5000, '"\\udc80"', '"\\u0000"', "null", "true",
                     '"0001-01-01T00:00:00+05:00"', '"9999-12-31T23:59:59-05:00"']),
)
FIELDS = ["incident.incident_id", "incident.title", "model_name", "usage.input_tokens",
          "usage.output_tokens", "usage.total_tokens", "usage.start_time", "analysis.summary",
          "analysis.severity", "analysis"]


def hostile_line(field: str, value: Any) -> bytes:
    record = make_record("FUZZ")
    literal = isinstance(value, str) and value[:1] in '[{"1-Nnt' and field != "incident.title"
    raw = value if literal else json.dumps(value)
    marker = "__MARK__"
    parent, _, key = field.rpartition(".")
    target = record[parent] if parent else record
    target[key] = marker
    return json.dumps(record).replace(f'"{marker}"', raw).encode()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_fuzzed_records_never_stop_the_stream(backend: str, tmp_path: Path) -> None:
    from store.settings import Settings
    from store.store import Store

    settings = Settings(data_dir=tmp_path / "fuzz", secrets_dir=tmp_path / "secrets")
    with Store.open(settings) as opened:

        @hypothesis_settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
        @given(field=st.sampled_from(FIELDS), value=HOSTILE_VALUES)
        def check(field: str, value: Any) -> None:
            good = json.dumps(make_record("GOOD-1")).encode()
            events = save_lines(opened, good + b"\n" + hostile_line(field, value) + b"\n" + good)
            assert [e.label for e in events] == ["line 1", "line 2", "line 3"]
            assert events[0].ok and events[2].ok
            bad = events[1]
            if not bad.ok:
                assert str(bad.result.error).startswith("line 2"), bad.result.error
                assert "\n" not in str(bad.result.error)
            from tui.output import json_text

            json_text(bad.as_json()).encode("utf-8")  # printable, whatever it holds

        check()


def test_stop_saves_every_record_read_then_ends_without_more_input(store: Any) -> None:
    from store.ingest.reader import RawRecord
    from store.ingest.stream import save_raw_records

    never = threading.Event()

    def producer() -> Any:
        for n in range(3):
            yield RawRecord(f"line {n + 1}", make_record(f"STOP-{n}"))
        never.wait(60)  # the producer is stuck (a pipe with no more input)

    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    batches = list(save_raw_records(store, producer(), batch_size=100, stop=stop,
                                    pause_seconds=60, max_wait_seconds=60))
    never.set()
    assert time.monotonic() - started < 10
    assert [[e.result.status for e in batch] for batch in batches] == [["saved"] * 3]


def test_a_pause_in_the_input_saves_the_batch_read_so_far(store: Any) -> None:
    from store.ingest.reader import RawRecord
    from store.ingest.stream import save_raw_records

    resume = threading.Event()

    def producer() -> Any:
        yield RawRecord("line 1", make_record("PAUSE-1"))
        resume.wait(60)
        yield RawRecord("line 2", make_record("PAUSE-2"))

    batches = save_raw_records(store, producer(), batch_size=100, pause_seconds=0.2)
    first = next(batches)  # arrives while the producer still waits
    assert [e.result.incident_id for e in first] == ["PAUSE-1"]
    resume.set()
    assert [[e.result.incident_id for e in batch] for batch in batches] == [["PAUSE-2"]]


# Backups -----------------------------------------------------------------------------------


def test_a_full_journal_disk_saves_nothing_and_says_so(store: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import store.backup.journal as journal
    from store.schemas import AnalysisIn

    record = AnalysisIn.model_validate(make_record("DISK-1"))

    def full_disk(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(journal, "fsync_path", full_disk)
        refused = store.save_analysis(record, "line 1")
    assert refused.status == "error"
    assert refused.error == ("line 1 (incident 'DISK-1'): journal not written (No space left on "
                             "device); nothing was saved")
    assert store.summary().analyses == 0
    again = store.save_analysis(record, "line 1")
    assert again.status == "saved"
    assert journaled_ids(store.backups) == [again.analysis_id]


KILL_AFTER_JOURNAL = "store.store.write_batch = lambda *a, **k: os._exit(9)"
KILL_AFTER_COMMIT = ("import store.backup.journal as j\n"
                     "j.Journal.commit = lambda *a, **k: os._exit(9)")


@pytest.mark.parametrize(("hook", "committed"), [(KILL_AFTER_JOURNAL, False),
                                                 (KILL_AFTER_COMMIT, True)])
def test_a_save_killed_between_journal_and_commit_line_is_settled_from_the_database(
        tmp_path: Path, isolated_directories: Path, hook: str, committed: bool) -> None:
    from store.backup.journal import journal_directory, scan
    from store.backup.service import Backups
    from store.settings import Settings
    from store.store import Store

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(make_record("KILL-1")) + "\n")
    killed = subprocess.run(
        [sys.executable, "-c",
         "import os, sys\n"
         "import store.store\n"
         f"{hook}\n"
         f"sys.argv = ['incidex', '--save', {str(source)!r}]\n"
         "from tui.cli import main\nmain()\n"],
        capture_output=True, timeout=120)
    assert killed.returncode == 9, killed.stderr
    backups = isolated_directories / "backups"
    [unfinished] = scan(journal_directory(backups)).unfinished()
    with Store.open(Settings(data_dir=isolated_directories)) as opened:
        assert opened.summary().analyses == int(committed)
        assert Backups(opened).settle_journal() == 1
        found = scan(journal_directory(backups))
        assert found.unfinished() == [] and found.damage == []
        assert bool(found.committed()) == committed
        assert found.batches[unfinished.batch_id].aborted == (not committed)


def test_opening_the_store_sweeps_only_stale_temp_files(settings: Any) -> None:
    from store.locations import backups_directory, index_directory
    from store.store import Store

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = os.getpid()
    incoming = backups_directory(settings) / ".incoming"
    index = index_directory(settings)
    now = time.time()
    files = {
        incoming / f".tmp-{dead.pid}-0-a.json": (now - 600, False),  # writer gone, old
        incoming / f".tmp-{dead.pid}-1-b.json": (now - 5, True),  # writer gone, fresh
        incoming / f".tmp-{alive}-2-c.json": (now - 600, True),  # writer alive
        incoming / f".tmp-{alive}-3-d.json": (now - 3 * 86400, False),  # abandoned for days
        index / f"vectors.faiss.tmp-{dead.pid}-77": (now - 600, False),
        index / "vectors.faiss": (now - 3 * 86400, True),  # not a temp file
    }
    for path, (mtime, _kept) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
        os.utime(path, (mtime, mtime))
    Store.open(settings).close()
    assert {path.name for path in files if path.exists()} == {
        path.name for path, (_mtime, kept) in files.items() if kept}


def test_stop_on_a_file_saves_the_records_read_and_reads_no_further(store: Any) -> None:
    from store.ingest.reader import RawRecord
    from store.ingest.stream import save_raw_records

    stop = threading.Event()
    read: list[int] = []

    def records() -> Any:
        for n in range(10):
            read.append(n)
            if n == 2:
                stop.set()  # the signal arrives while record 3 is read
            yield RawRecord(f"line {n + 1}", make_record(f"FILE-{n}"))

    batches = list(save_raw_records(store, records(), batch_size=100, stop=stop,
                                    pause_seconds=None))
    assert [[e.result.incident_id for e in batch] for batch in batches] == [
        ["FILE-0", "FILE-1", "FILE-2"]]
    assert read == [0, 1, 2]
