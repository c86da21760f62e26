"""`incidex backup ...` as a user types it: output, exit codes, files written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_record


def incidex(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli", *arguments], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ})


def fill(tmp_path: Path, *incident_ids: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(make_record(i)) + "\n" for i in incident_ids))
    assert incidex("--save", str(source)).returncode == 0


def test_now_list_drill_and_a_corrupted_snapshot(tmp_path: Path,
                                                 isolated_directories: Path) -> None:
    fill(tmp_path, "CLI-1", "CLI-2")
    taken = incidex("backup", "now")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.startswith("snapshot ") and "2 analyses" in taken.stdout
    listed = incidex("backup", "list", "--json")
    status = json.loads(listed.stdout)
    [snapshot] = status["snapshots"]
    assert snapshot["good"] and snapshot["counts"]["analyses"] == 2
    assert status["journal"] and status["oldest_restorable"]
    drilled = incidex("backup", "drill")
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    assert "recovery time" in drilled.stdout and "FAIL" not in drilled.stdout
    database = next((isolated_directories / "backups" / "snapshots" / snapshot["id"]).glob(
        "database.*"))
    data = bytearray(database.read_bytes())
    data[-10] ^= 0x01
    database.write_bytes(bytes(data))
    failed = incidex("backup", "drill")
    assert failed.returncode == 1
    assert "FAIL restore: restore to " in failed.stdout
    assert f"snapshot {snapshot['id']}: {database.name} does not match its checksum" in (
        failed.stdout)


def test_restore_export_schedule_and_usage_errors(tmp_path: Path,
                                                  isolated_directories: Path) -> None:
    fill(tmp_path, "CLI-3")
    target = tmp_path / "copy"
    restored = incidex("backup", "restore", "--to", "now", "--into", str(target))
    assert restored.returncode == 0, restored.stderr
    assert f"into {target}" in restored.stdout and "journal only" in restored.stdout
    assert (target / "incident_analysis.db").exists()
    bad_time = incidex("backup", "restore", "--to", "yesterday-ish")
    assert bad_time.returncode == 2
    assert "is not an ISO 8601 time" in bad_time.stderr
    exported = incidex("backup", "export", "--incident", "CLI-3", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    document = json.loads((tmp_path / "CLI-3.json").read_text())
    assert document["incident"]["incident_id"] == "CLI-3" and len(document["analyses"]) == 1
    assert stat.S_IMODE((tmp_path / "CLI-3.json").stat().st_mode) == 0o600
    missing = incidex("backup", "export", "--incident", "NOPE")
    assert missing.returncode == 1 and "no incident 'NOPE'" in missing.stderr
    units = incidex("backup", "schedule", "--print")
    assert "OnCalendar=*-*-* 03:17:00" in units.stdout
    assert f"--data-dir {isolated_directories} backup run-due" in units.stdout
    first = incidex("backup", "run-due")
    assert "snapshot" in first.stdout and "drill passed" in first.stdout, first.stdout
    assert incidex("backup", "run-due").stdout.strip() == "nothing due"


def test_backup_commands_never_create_a_store(tmp_path: Path) -> None:
    result = incidex("--data-dir", str(tmp_path / "nowhere"), "backup", "now")
    assert result.returncode == 3
    assert "no data directory" in result.stderr
    assert not (tmp_path / "nowhere").exists()
