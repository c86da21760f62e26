"""Forgets and purges survive a restore, and writes other than saves are journaled: a restore
to a time after a forget has none of the incident's rows, one to a time after an `incident
add`, a metered failed call or a restriction has it; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from store.backup.journal import day_path, journal_days, journal_directory, scan
from store.backup.service import Backups
from store.schemas import AnalysisIn, IncidentIn
from store.store import Store
from tests.conftest import make_record
from tests.support.backups import drop_restored, mark, save


@pytest.fixture
def restores(store: Store) -> Iterator[list[Any]]:
    """Restored stores made by a test (PostgreSQL databases dropped after it)."""
    made: list[Any] = []
    yield made
    drop_restored(made)


def restore(store: Store, to: datetime, restores: list[Any]) -> Any:
    report = Backups(store).restore(to)
    restores.append(report)
    return report


def rows_of(settings: Any, incident_id: str) -> dict[str, int]:
    """How many rows of each kind name the incident in a restored store."""
    queries = {
        "incidents": "SELECT count(*) FROM incidents WHERE incident_id = :i",
        "analyses": "SELECT count(*) FROM analyses WHERE incident_id = :i",
        "embeddings": "SELECT count(*) FROM embeddings e JOIN analyses a "
                      "ON a.id = e.analysis_pk WHERE a.incident_id = :i",
        "indicators": "SELECT count(*) FROM incident_indicators WHERE incident_id = :i",
        "usage links": "SELECT count(*) FROM run_metadata WHERE incident_id = :i",
    }
    with Store.open(settings, create=False) as restored, restored.engine.connect() as db:
        found = {name: int(db.execute(text(sql), {"i": incident_id}).scalar_one())
                 for name, sql in queries.items()}
        found["search"] = restored.count_incidents(query=incident_id)
    return found


NONE = {"incidents": 0, "analyses": 0, "embeddings": 0, "indicators": 0, "usage links": 0,
        "search": 0}
GONE = make_record("GONE-1")["incident"]


def gone_record(**overrides: Any) -> dict[str, Any]:
    record = make_record("GONE-1", **overrides)
    record["incident"]["description"] = "Beacon to 203.0.113.77 from the finance laptop."
    return record


def test_a_restore_after_a_forget_has_none_of_its_rows_and_one_before_cannot_read_them(
        store: Store, restores: list[Any]) -> None:
    backups = Backups(store)
    store.save_batch([("a", AnalysisIn.model_validate(gone_record())),
                      ("b", AnalysisIn.model_validate(make_record("KEEP-1")))])
    store.vectors.index()  # the index snapshot then holds GONE-1's vector
    store.vectors.snapshot(force=True)
    gone_pks = _analysis_pks(store, "GONE-1")
    backups.now()  # the snapshot holds GONE-1
    before_forget = mark()
    assert store.forget(["GONE-1"]).incidents == 1
    after = save(store, "AFTER-1")
    report = restore(store, after, restores)
    assert rows_of(report.settings, "GONE-1") == NONE
    assert rows_of(report.settings, "KEEP-1")["analyses"] == 1
    assert report.incidents_forgotten == 1
    with Store.open(report.settings, create=False) as restored:
        assert restored.summary().incidents == 2
        with restored.engine.connect() as db:
            tokens = db.execute(text("SELECT sum(total_tokens) FROM run_metadata")).scalar()
        assert restored.verify_vectors().in_step
        if report.settings.database_url is None:  # SQLite: the restore has its own index
            from store.locations import index_directory
            from store.vectors.index import SNAPSHOT_FILE

            assert (index_directory(report.settings) / SNAPSHOT_FILE).exists()
            held = set(restored.vectors.index().ids().tolist())
            assert held and not held & set(gone_pks)
    with store.engine.connect() as db:  # usage numbers stay, as on the live store
        assert tokens == db.execute(text("SELECT sum(total_tokens) FROM run_metadata")).scalar()
    earlier = restore(store, before_forget, restores)
    assert rows_of(earlier.settings, "GONE-1")["incidents"] == 1
    with Store.open(earlier.settings, create=False) as restored:
        detail = restored.incident("GONE-1")
        assert detail is not None and detail.unreadable
        assert all(a.unreadable for a in restored.analyses("GONE-1"))


def _analysis_pks(store: Store, incident_id: str) -> list[int]:
    with store.engine.connect() as db:
        return list(db.execute(text("SELECT id FROM analyses WHERE incident_id = :i"),
                               {"i": incident_id}).scalars())


def test_a_clear_journal_replays_a_forget_in_time_order_with_a_later_re_save(
        settings: Any, restores: list[Any]) -> None:
    clear = settings.model_copy(update={"encrypt_at_rest": False})
    with Store.open(clear) as store:
        save(store, "KEEP-2")
        store.save_batch([("a", AnalysisIn.model_validate(gone_record()))])
        store.forget(["GONE-1"])
        forgotten = mark()
        store.save_batch([("a", AnalysisIn.model_validate(gone_record(
            analysis={"summary": "filed again", "severity": "low"})))])
        again = mark()
        # No snapshot: the journal alone, whose GONE-1 bodies are clear, is replayed.
        between = restore(store, forgotten, restores)
        assert rows_of(between.settings, "GONE-1") == NONE
        latest = restore(store, again, restores)
        with Store.open(latest.settings, create=False) as restored:
            [analysis] = restored.analyses("GONE-1")
            assert analysis.analysis["summary"] == "filed again"


def test_a_purge_killed_before_its_forget_lines_is_settled_from_its_tombstones(
        store: Store, restores: list[Any]) -> None:
    store.save_batch([("a", AnalysisIn.model_validate(gone_record()))])
    Backups(store).now()
    store.forget(["GONE-1"])
    folder = journal_directory(store.backups)
    for day in journal_days(folder):
        path = day_path(folder, day)
        path.write_bytes(b"".join(line for line in path.read_bytes().splitlines(keepends=True)
                                  if b'"kind":"forget"' not in line))
    assert not scan(folder).forgets
    report = restore(store, mark(), restores)
    assert rows_of(report.settings, "GONE-1") == NONE
    assert len(scan(folder).forgets) == 1  # written back by the restore's settling


def test_the_forget_line_carries_no_incident_id(store: Store) -> None:
    store.save_batch([("a", AnalysisIn.model_validate(gone_record()))])
    store.forget(["GONE-1"])
    folder = journal_directory(store.backups)
    lines = [line for day in journal_days(folder)
             for line in day_path(folder, day).read_bytes().splitlines()
             if b'"kind":"forget"' in line]
    assert len(lines) == 1 and b"GONE-1" not in lines[0]
    [forget] = scan(folder).forgets
    assert forget.incident_hash == store.cipher.index.keyed_hash("tombstone", "GONE-1")


# Writes other than saves -------------------------------------------------------------------


def test_an_incident_added_without_an_analysis_is_restored(
        store: Store, restores: list[Any]) -> None:
    Backups(store).now()
    before = mark()
    incident = IncidentIn(incident_id="ADD-1", title="Added by hand",
                          description="Odd logins on the VPN gateway.", initial_findings="")
    assert store.register_incidents([incident]) == [True]
    added = mark()
    report = restore(store, added, restores)
    with Store.open(report.settings, create=False) as restored:
        detail = restored.incident("ADD-1")
        assert detail is not None and not detail.unreadable
        assert detail.description == "Odd logins on the VPN gateway."
        assert restored.unanalysed_incident_ids() == ["ADD-1"]
    earlier = restore(store, before, restores)
    with Store.open(earlier.settings, create=False) as restored:
        assert restored.incident("ADD-1") is None


def test_metered_calls_without_an_analysis_are_restored(
        store: Store, restores: list[Any]) -> None:
    from store.analyze.client import ChatCall

    save(store, "RUN-1")
    Backups(store).now()
    started = datetime.now(UTC)
    failed = ChatCall(model_name="gpt-4o-mini", text="not json", input_tokens=900,
                      output_tokens=40, start_time=started, end_time=started,
                      request_id="req-failed", finish_reason="stop", document=None)
    store.record_calls([failed], "RUN-1", None)
    report = restore(store, mark(), restores)
    with Store.open(report.settings, create=False) as restored, \
            restored.engine.connect() as db:
        rows = db.execute(text("SELECT request_id, incident_id, input_tokens, cost_usd "
                               "FROM run_metadata WHERE request_id = 'req-failed'")).all()
    with store.engine.connect() as db:
        live = db.execute(text("SELECT request_id, incident_id, input_tokens, cost_usd "
                               "FROM run_metadata WHERE request_id = 'req-failed'")).all()
    assert rows == live and len(rows) == 1


def test_a_restriction_is_restored(store: Store, restores: list[Any]) -> None:
    save(store, "RES-1")
    Backups(store).now()
    store.restrict_incident("RES-1", "ir-team")
    restricted = mark()
    store.restrict_incident("RES-1", ())
    lifted = mark()
    report = restore(store, restricted, restores)
    assert _teams(report.settings, "RES-1") == ["ir-team"]
    report = restore(store, lifted, restores)
    assert _teams(report.settings, "RES-1") == []


def _teams(settings: Any, incident_id: str) -> list[str]:
    with Store.open(settings, create=False) as restored, restored.engine.connect() as db:
        return list(db.execute(text("SELECT teams FROM incident_restrictions WHERE "
                                    "incident_id = :i"), {"i": incident_id}).scalars())


def test_the_drill_passes_over_forgets_and_journaled_entries(store: Store) -> None:
    from store.analyze.client import ChatCall

    backups = Backups(store)
    save(store, "DR-1", "DR-2")
    store.register_incidents([IncidentIn(incident_id="DR-ADD", title="Added",
                                         description="Port scan.", initial_findings="")])
    backups.now()
    started = datetime.now(UTC)
    store.record_calls([ChatCall("req-dr", "gpt-4o-mini", 10, 2, started, started, "stop",
                                 "{}", None)], "DR-1", None)
    store.forget(["DR-2"])
    store.restrict_incident("DR-1", "ir-team")
    store.register_incidents([IncidentIn(incident_id="DR-ADD-2", title="Added later",
                                         description="Odd DNS.", initial_findings="")])
    save(store, "DR-3")
    report = backups.drill()
    assert report.ok, [c for c in report.checks if not c[1]]
    [restore_check] = [d for n, _ok, d in report.checks if n == "restore"]
    assert "1 forgotten incidents erased" in restore_check


def test_an_added_incident_s_text_is_sealed_in_the_journal_and_forgotten_with_it(
        store: Store, restores: list[Any]) -> None:
    secret = "Exfiltration via the payroll share."
    store.register_incidents([IncidentIn(incident_id="SEAL-1", title="Added",
                                         description=secret, initial_findings="")])
    folder = journal_directory(store.backups)
    held = b"".join(day_path(folder, day).read_bytes() for day in journal_days(folder))
    assert b"payroll" not in held and b'"entry":"incident"' in held
    store.forget(["SEAL-1"])
    report = restore(store, mark(), restores)
    assert rows_of(report.settings, "SEAL-1") == NONE
    assert report.records_forgotten == 1  # its sealed entry no longer opens


def test_usage_rows_replayed_over_a_snapshot_that_holds_them_are_not_doubled(
        store: Store, restores: list[Any]) -> None:
    from store.analyze.client import ChatCall

    save(store, "RUN-2")
    started = datetime.now(UTC)
    store.record_calls([ChatCall("req-twice", "gpt-4o-mini", 500, 20, started, started, "stop",
                                 "{}", None)], "RUN-2", None)
    Backups(store).now()  # within the replay slack: the entry is replayed over the snapshot
    report = restore(store, mark(), restores)
    with Store.open(report.settings, create=False) as restored, \
            restored.engine.connect() as db:
        restored_rows = db.execute(text("SELECT count(*), sum(input_tokens) FROM "
                                        "run_metadata")).one()
    with store.engine.connect() as db:
        live_rows = db.execute(text("SELECT count(*), sum(input_tokens) FROM "
                                    "run_metadata")).one()
    assert tuple(restored_rows) == tuple(live_rows)


def test_a_journal_only_restore_skips_the_restriction_of_an_incident_forgotten_since(
        store: Store, restores: list[Any]) -> None:
    save(store, "RES-2")
    store.restrict_incident("RES-2", "ir-team")
    restricted = mark()
    store.forget(["RES-2"])
    # No snapshot: RES-2's sealed lines no longer open, so its restriction has no incident.
    report = restore(store, restricted, restores)
    assert rows_of(report.settings, "RES-2")["incidents"] == 0
    assert _teams(report.settings, "RES-2") == []
