"""The audit log: append-only, HMAC-chained, anchored outside the database; what verify catches."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import REPO_ROOT

WRITERS = 4
EVENTS_PER_WRITER = 30


def fill(store: Any, count: int) -> None:
    for number in range(count):
        store.record_event("read", incident_id=f"INC-{number}", detail=f"event {number}")


def drop_triggers(store: Any) -> None:
    """What an attacker with the database (file or superuser) would do first."""
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER audit_events_no_change ON audit_events"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
            connection.execute(text("DROP TRIGGER audit_events_no_delete"))


def tamper(store: Any, statement: str) -> None:
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(text(statement))


def first_problem(store: Any) -> str:
    report = store.verify_audit()
    assert not report.ok
    return report.problems[0]


def test_a_new_store_starts_its_chain_with_the_creator_becoming_admin(store: Any) -> None:
    entries = store.audit_entries()
    assert [(e.seq, e.action, e.actor) for e in entries] == [(1, "role_change", store.actor.name)]
    assert store.verify_audit().ok


def test_events_chain_and_verify(store: Any) -> None:
    fill(store, 20)
    report = store.verify_audit()
    assert report.ok, report.problems
    assert report.entries == 21
    entries = store.audit_entries()
    assert [e.seq for e in entries] == list(range(1, 22))
    pairs = list(zip(entries, entries[1:], strict=False))
    assert all(later.prev_hash == earlier.hash for earlier, later in pairs)
    assert all(later.at >= earlier.at for earlier, later in pairs)


def test_filters_by_actor_incident_and_time(store: Any) -> None:
    fill(store, 5)
    assert [e.incident_id for e in store.audit_entries(incident_id="INC-3")] == ["INC-3"]
    assert store.audit_entries(actor="nobody-else") == []
    late = store.audit_entries()[-1].at
    assert [e.seq for e in store.audit_entries(since=late)] == [6]


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET detail = 'nothing happened' WHERE seq = 1",
    "DELETE FROM audit_events WHERE seq = 1",
])
def test_triggers_refuse_update_and_delete(store: Any, statement: str) -> None:
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text(statement))
    assert store.verify_audit().ok


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_refuses_truncate(store: Any) -> None:
    from sqlalchemy.exc import DBAPIError

    assert store.engine.dialect.name == "postgresql"  # SQLite has no TRUNCATE
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_events"))


def test_an_edited_detail_is_caught_and_named(store: Any) -> None:
    fill(store, 10)
    tamper(store, "UPDATE audit_events SET detail = 'nothing to see' WHERE seq = 7")
    assert first_problem(store) == "entry 7: its hash does not match its content (edited)"


def test_a_changed_timestamp_is_caught(store: Any) -> None:
    fill(store, 10)
    entry = store.audit_entries()[4]
    earlier = entry.at.replace(year=entry.at.year - 1)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET at = :at WHERE seq = 5"),
                           {"at": earlier.replace(tzinfo=None) if store.engine.dialect.name
                            == "sqlite" else earlier})
    assert first_problem(store).startswith("entry 5: ")


def test_a_deleted_entry_is_caught(store: Any) -> None:
    fill(store, 10)
    tamper(store, "DELETE FROM audit_events WHERE seq = 4")
    assert first_problem(store) == "entry 4: missing (the next entry found is 5)"


def test_two_reordered_entries_are_caught(store: Any) -> None:
    fill(store, 10)
    drop_triggers(store)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 5"))
        connection.execute(text("UPDATE audit_events SET seq = 5 WHERE seq = 6"))
        connection.execute(text("UPDATE audit_events SET seq = 6 WHERE seq = -1"))
    assert first_problem(store).startswith("entry 5: ")


def test_deleting_the_last_entries_is_caught_by_the_anchor(store: Any) -> None:
    fill(store, 10)
    anchor = store.anchor_audit()
    assert anchor is not None and anchor.seq == 11
    tamper(store, "DELETE FROM audit_events WHERE seq > 8")
    assert first_problem(store) == ("entry 9: missing (the log ends at entry 8, but anchor "
                                    "line 1 (entry 11) was signed)")


def test_a_forged_anchor_is_caught(store: Any) -> None:
    fill(store, 3)
    store.anchor_audit()
    path = store.audit.anchor_file()
    anchor = json.loads(path.read_text())
    anchor["seq"] = 2  # pretend the log was shorter, keeping the old signature
    path.write_text(json.dumps(anchor) + "\n")
    assert "bad signature" in first_problem(store)


def test_an_anchor_signed_with_another_key_is_caught(store: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from store.audit.anchors import signed_message

    fill(store, 3)
    store.anchor_audit()
    path = store.audit.anchor_file()
    anchor = json.loads(path.read_text())
    message = signed_message(anchor["store_id"], anchor["seq"], anchor["hash"], anchor["at"])
    anchor["signature"] = base64.b64encode(Ed25519PrivateKey.generate().sign(message)).decode()
    path.write_text(json.dumps(anchor) + "\n")
    assert first_problem(store) == ("anchor line 1 (entry 4): bad signature (forged or edited "
                                    "anchor)")


def test_a_rewritten_chain_without_the_key_breaks_at_the_first_change(store: Any) -> None:
    """Recomputing the hashes with a guessed key does not help: the HMAC key is not in the
    database."""
    import hashlib

    fill(store, 5)
    tamper(store, "UPDATE audit_events SET hash = '" + hashlib.sha256(b"x").hexdigest()
           + "' WHERE seq = 6")
    assert first_problem(store) == "entry 6: its hash does not match its content (edited)"


def test_the_anchor_file_is_private_and_outside_the_data_directory(store: Any) -> None:
    fill(store, 1)
    store.anchor_audit()
    path = store.audit.anchor_file()
    assert not path.is_relative_to(Path(os.environ["INCIDEX_DATA_DIR"]))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_closing_a_store_that_wrote_events_anchors_its_head(settings: Any) -> None:
    from store.store import Store

    with Store.open(settings) as opened:
        fill(opened, 2)
        path = opened.audit.anchor_file()
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["seq"] == 3


WRITER = """
import sys
from store.settings import Settings
from store.store import Store
settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2])
with Store.open(settings) as store:
    for number in range(int(sys.argv[3])):
        store.record_event("read", incident_id=f"W{sys.argv[4]}-{number}")
"""


@pytest.mark.slow
def test_four_concurrent_writers_keep_the_chain_valid(settings: Any) -> None:
    from store.store import Store

    with Store.open(settings) as opened:
        url = opened.engine.url.render_as_string(hide_password=False)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(settings.data_dir), url,
                                 str(EVENTS_PER_WRITER), str(number)], cwd=REPO_ROOT,
                                stderr=subprocess.PIPE)
               for number in range(WRITERS)]
    for writer in writers:
        _out, errors = writer.communicate(timeout=240)
        assert writer.returncode == 0, errors.decode()[-2000:]
    with Store.open(settings) as opened:
        report = opened.verify_audit()
        assert report.ok, report.problems
        assert report.entries == 1 + WRITERS * EVENTS_PER_WRITER
        assert report.anchors >= WRITERS


def test_any_actor_action_and_detail_chain_and_verify(tmp_path: Path) -> None:
    """Hostile or odd text in an event (control characters, quotes, very long, non-ASCII) is
    stored on one bounded line and still verifies."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from store.settings import Settings
    from store.store import Store

    opened = Store.open(Settings(data_dir=tmp_path / "data"))
    texts = st.text(max_size=400)

    @settings(max_examples=40, deadline=None)
    @given(actor=st.text(min_size=1, max_size=200), action=st.text(min_size=1, max_size=80),
           detail=texts, incident=st.none() | st.text(max_size=300))
    def check(actor: str, action: str, detail: str, incident: str | None) -> None:
        entry = opened.audit.record(actor, action, incident_id=incident, detail=detail)
        assert len(entry.detail) <= 200 and "\n" not in entry.detail
        assert opened.audit.entries()[-1] == entry

    check()
    report = opened.verify_audit()
    opened.close()
    assert report.ok, report.problems
