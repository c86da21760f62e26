"""Backup file names are always safe, distinct and inside the backup directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from store.backup.json_files import BackupItem, backup_path, write_backups
from store.fileio import safe_name

HOSTILE_IDS = ["../../etc/passwd", "a/b/c", "a\\b\\c", "nul\x00byte", "bell\x07\x1b[31m",
               "x" * 300, "..", ".", "", "   ", "/absolute", "C:\\Windows\\system32", "ñandú-Ω",
               ".hidden", "-rf"]


@pytest.mark.parametrize("incident_id", HOSTILE_IDS)
def test_hostile_ids_stay_inside_the_backup_directory(incident_id: str, tmp_path: Path) -> None:
    item = BackupItem(incident_id, "an-0123456789abcdef01234567", datetime.now(UTC), {"a": 1})
    path = backup_path(tmp_path, item)
    assert tmp_path.resolve() in path.resolve().parents
    name = safe_name(incident_id)
    assert name and len(name) <= 100 and not name.startswith((".", "-"))
    assert all(ch.isalnum() or ch in "._-~" for ch in name) and name.isascii()
    [written] = write_backups(tmp_path, [item])
    assert written.read_text().startswith("{")


def test_distinct_ids_give_distinct_names() -> None:
    names = {safe_name(identifier) for identifier in HOSTILE_IDS}
    assert len(names) == len(HOSTILE_IDS)
    assert safe_name("INC-2026-0001") == "INC-2026-0001"
    assert safe_name("a/b") != safe_name("a_b")


def test_same_second_backups_do_not_overwrite(tmp_path: Path) -> None:
    moment = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    items = [BackupItem("INC-1", f"an-{n:024d}", moment, {"n": n}) for n in range(5)]
    written = write_backups(tmp_path, items)
    assert len(set(written)) == 5
    assert sorted(p.read_text().count('"n"') for p in written) == [1] * 5
    assert not list(tmp_path.rglob(".tmp-*"))
