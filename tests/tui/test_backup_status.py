"""Backups in the app: the status line on the usage screen, and `run-due` in the background."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from store.backup.drill import last_drills
from store.backup.service import Backups
from store.backup.snapshots import list_snapshots
from store.settings import Settings
from tests.tui.conftest import SIZE, make_app, settle


@pytest.fixture
def tui_settings(isolated_directories: Path) -> Settings:
    """Settings of a SQLite store (encrypted at rest, the default)."""
    return Settings(data_dir=isolated_directories)


def status_line(app: Any) -> tuple[str, bool]:
    line = app.screen.query_one("#usage-backup")
    return str(line.render()), line.has_class("-stale")


async def test_the_usage_screen_shows_the_age_of_the_last_snapshot_and_drill(
        filled_store: Any, tui_settings: Any) -> None:
    backups = Backups(filled_store)
    snapshot = backups.now()
    report = backups.drill()
    app = make_app(filled_store, tui_settings, now=lambda: snapshot.taken_at + timedelta(hours=3))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        text, stale = status_line(app)
    assert text == (f"Backups: last snapshot 3h ago · last drill passed "
                    f"{report.started_at.date().isoformat()}")
    assert not stale


async def test_a_snapshot_older_than_a_day_is_a_warning(filled_store: Any,
                                                        tui_settings: Any) -> None:
    snapshot = Backups(filled_store).now()
    app = make_app(filled_store, tui_settings, now=lambda: snapshot.taken_at + timedelta(days=2))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        text, stale = status_line(app)
    assert text == "⚠ Backups: last good snapshot 2d ago, over a day old · no drill yet"
    assert stale


async def test_no_snapshot_at_all_is_a_warning(filled_store: Any, tui_settings: Any) -> None:
    app = make_app(filled_store, tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        text, stale = status_line(app)
    assert text.startswith("⚠ Backups: no snapshot yet") and stale


async def test_the_app_runs_run_due_in_the_background_when_it_is_due(
        filled_store: Any, tui_settings: Any) -> None:
    from datetime import UTC, datetime

    backups_folder = filled_store.backups
    app = make_app(filled_store, tui_settings, auto_backup=True, now=lambda: datetime.now(UTC))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, rounds=400)
        shown = [n.message for n in app._notifications]
    snapshots = list_snapshots(backups_folder)
    assert [s.good for s in snapshots] == [True]
    assert [d["ok"] for d in last_drills(backups_folder)] == [True]
    assert any(f"snapshot {snapshots[0].snapshot_id} taken" in m for m in shown)
    events = [e for e in filled_store.audit_entries() if e.action.startswith("backup_")]
    assert [e.action for e in events] == ["backup_run_due"]
    assert events[0].detail.startswith(f"snapshot {snapshots[0].snapshot_id} taken; drill passed")
    # Started again the same day nothing is due: no second snapshot, no second event.
    again = make_app(filled_store, tui_settings, auto_backup=True, now=lambda: datetime.now(UTC))
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
    assert len(list_snapshots(backups_folder)) == 1
    assert [e.action for e in filled_store.audit_entries()
            if e.action.startswith("backup_")] == ["backup_run_due"]


async def test_background_backups_are_off_when_the_setting_says_so(
        filled_store: Any, tui_settings: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("INCIDEX_BACKUP_AUTO", "0")
    settings = Settings(data_dir=tui_settings.data_dir)
    assert settings.backup_auto is False
    app = make_app(filled_store, settings, auto_backup=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
    assert app.auto_backup is False and list_snapshots(filled_store.backups) == []
    monkeypatch.setenv("INCIDEX_BACKUP_AUTO", "1")
    assert make_app(filled_store, Settings(data_dir=tui_settings.data_dir),
                    auto_backup=None).auto_backup is True
