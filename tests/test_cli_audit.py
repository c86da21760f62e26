"""`incidex audit verify|log|anchor` and `incidex users add|list` from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import make_record
from tests.test_cli_similar import incidex


def saved_store(tmp_path: Path) -> Path:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(make_record(f"INC-{n}")) + "\n" for n in range(3)))
    result = incidex("--save", str(source))
    assert result.returncode == 0, result.stderr
    return Path(os.environ["INCIDEX_DATA_DIR"]) / "incident_analysis.db"


def test_verify_says_the_log_is_intact(tmp_path: Path) -> None:
    saved_store(tmp_path)
    result = incidex("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit log intact: ")


def test_verify_exits_5_naming_the_first_bad_entry(tmp_path: Path) -> None:
    database = saved_store(tmp_path)
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_events_no_update"))
        connection.execute(text("UPDATE audit_events SET actor = 'someone' WHERE seq = 2"))
    engine.dispose()
    result = incidex("audit", "verify")
    assert result.returncode == 5
    assert result.stderr.strip() == ("incidex: audit log broken: entry 2: its hash does not "
                                     "match its content (edited)")


def test_log_prints_events_and_json_lines(tmp_path: Path) -> None:
    saved_store(tmp_path)
    lines = incidex("audit", "log", "--json").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["action"] for e in events] == ["role_change", "save"]
    assert events[1]["detail"] == "3 saved, 0 duplicate, 0 failed"
    assert incidex("audit", "log", "--actor", "nobody").stdout == ""
    human = incidex("audit", "log").stdout.splitlines()
    assert len(human) == 2 and "role_change" in human[0]


def test_anchor_then_truncation_is_caught(tmp_path: Path) -> None:
    database = saved_store(tmp_path)
    assert incidex("audit", "anchor").returncode == 0
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_events_no_delete"))
        connection.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    engine.dispose()
    result = incidex("audit", "verify")
    assert result.returncode == 5
    assert "entry 2: missing" in result.stderr


def store_created_by_someone_else(role: str) -> None:
    """A store alice created (so she is its admin) where the user running the tests has role."""
    from store.access.directory import os_user
    from store.settings import Settings
    from store.store import Store

    with Store.open(Settings(), actor="alice") as store:
        store.add_user(os_user(), role)


def test_a_denied_command_is_one_line_and_exit_4(tmp_path: Path) -> None:
    store_created_by_someone_else("viewer")
    result = incidex("audit", "log")
    assert result.returncode == 4 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("incidex: access denied: ") and "may not read_audit" in lines[0]
    assert incidex("users", "list").returncode == 4


def test_users_add_and_list(tmp_path: Path) -> None:
    saved_store(tmp_path)
    added = incidex("users", "add", "bob", "--role", "lead", "--team", "Red", "--purge")
    assert added.returncode == 0, added.stderr
    listed = [json.loads(line) for line in incidex("users", "list", "--json").stdout.splitlines()]
    bob = next(user for user in listed if user["name"] == "bob")
    assert (bob["role"], bob["teams"], bob["can_purge"]) == ("lead", ["red"], True)
    refused = incidex("users", "add", "eve", "--role", "viewer", "--purge")
    assert refused.returncode == 1 and "only a lead or an admin can purge" in refused.stderr
    unknown = incidex("users", "add", "eve", "--role", "boss")
    assert unknown.returncode == 2


def test_restrict_hides_an_incident_from_another_team(tmp_path: Path) -> None:
    saved_store(tmp_path)
    assert incidex("restrict", "INC-1", "--team", "red").returncode == 0
    assert incidex("restrict", "INC-1").returncode == 2
    events = [json.loads(line) for line in incidex("audit", "log", "--incident", "INC-1",
                                                   "--json").stdout.splitlines()]
    assert [(e["action"], e["detail"]) for e in events] == [("restrict", "restricted to red")]
