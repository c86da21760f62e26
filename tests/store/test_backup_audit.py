"""Backups in the audit log, and who may take, restore and drill them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from store.backup.drill import last_drills
from store.backup.restore import drop_postgres_database
from store.backup.service import Backups
from store.backup.snapshots import list_snapshots
from store.errors import AccessDenied
from store.schemas import AnalysisIn
from store.store import Store
from tests.conftest import make_record


def backup_events(store: Any) -> list[Any]:
    return [e for e in store.audit.entries() if e.action.startswith("backup_")]


def filled(store: Any) -> Any:
    store.save_many([(f"r{n}", AnalysisIn.model_validate(make_record(f"AUD-{n}")))
                     for n in range(3)])
    return store


def test_backup_now_restore_drill_and_run_due_leave_one_event_each_without_incident_text(
        store: Any, tmp_path: Path) -> None:
    backups = Backups(filled(store))
    snapshot = backups.now()
    target = tmp_path / "restored" if store.settings.database_url.startswith("sqlite") else \
        f"audit_{snapshot.snapshot_id[-8:]}".lower()
    report = backups.restore(datetime.now(UTC), target)
    if report.settings.database_url and report.settings.database_url.startswith("postgres"):
        drop_postgres_database(report.settings)
    drill = backups.drill()
    done = backups.run_due(7, 4)
    events = backup_events(store)
    assert [(e.action, e.outcome, e.actor) for e in events] == [
        (action, "allowed", store.actor.name)
        for action in ("backup_now", "backup_restore", "backup_drill", "backup_run_due")]
    now_event, restore_event, drill_event, due_event = events
    assert now_event.detail == f"snapshot {snapshot.snapshot_id}"
    assert restore_event.detail.startswith(f"to {report.to.isoformat()}, snapshot "
                                           f"{snapshot.snapshot_id}, ")
    assert drill.ok and drill_event.detail.startswith("passed; recovery time ")
    assert done == [] and due_event.detail == "nothing due"
    texts = " ".join(e.detail for e in events)
    assert "Phishing" not in texts and "invoice" not in texts and "AUD-" not in texts


@pytest.fixture
def as_user(store: Any) -> Any:
    """Open the store as another user with a role (the test's own user created it: admin)."""
    opened: list[Store] = []

    def opener(name: str, role: str) -> Store:
        store.add_user(name, role)
        other = Store.open(store.settings, actor=name)
        opened.append(other)
        return other

    yield opener
    for other in opened:
        other.close()


def test_a_lead_may_snapshot_but_a_restore_or_a_drill_needs_an_admin(
        store: Any, as_user: Any, tmp_path: Path) -> None:
    filled(store)
    lead = as_user("rita", "lead")
    backups = Backups(lead)
    snapshot = backups.now()
    with pytest.raises(AccessDenied, match=r"^access denied: rita \(lead\) may not restore"):
        backups.restore(datetime.now(UTC), tmp_path / "restored")
    with pytest.raises(AccessDenied, match=r"rita \(lead\) may not restore"):
        backups.drill()
    assert not (tmp_path / "restored").exists() and last_drills(store.backups) == []
    # run-due takes what a lead may (it is the daily snapshot's timer) and leaves the drill.
    assert backups.run_due(7, 4) == ["drill due: it needs an admin (`incidex backup drill`)"]
    assert [s.snapshot_id for s in list_snapshots(store.backups)] == [snapshot.snapshot_id]
    assert [(e.action, e.outcome) for e in store.audit.entries() if e.actor == "rita"][-4:] == [
        ("backup_now", "allowed"), ("restore", "denied"), ("restore", "denied"),
        ("backup_run_due", "allowed")]


def test_an_analyst_may_not_even_snapshot(store: Any, as_user: Any) -> None:
    analyst = as_user("ana", "analyst")
    with pytest.raises(AccessDenied, match=r"ana \(analyst\) may not maintain"):
        Backups(analyst).now()
    with pytest.raises(AccessDenied, match=r"ana \(analyst\) may not maintain"):
        Backups(analyst).run_due(7, 4)
    assert list_snapshots(store.backups) == []
    assert Backups(analyst).due() is False  # so the TUI never starts it for an analyst
