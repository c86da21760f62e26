"""Every command's human output escapes terminal controls; JSON output keeps the data, escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.hostile import (
    C1_CSI,
    CLEAR,
    FORBIDDEN,
    HOSTILE_ID,
    HOSTILE_TITLE,
    OSC_TITLE,
    hostile_record,
)
from tests.test_cli_similar import incidex


def clean(*outputs: str) -> None:
    for output in outputs:
        assert FORBIDDEN.findall(output) == [], output


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    bad = hostile_record(f"BAD {OSC_TITLE}")
    bad["usage"]["input_tokens"] = "many"
    records = [hostile_record(), hostile_record(f"EVIL-2 {CLEAR}{C1_CSI}", hours_earlier=1), bad]
    source = tmp_path / "hostile.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    return source


def test_save_reports_and_errors_are_escaped(hostile: Path) -> None:
    saved = incidex("--save", str(hostile))
    assert saved.returncode == 1
    clean(saved.stdout, saved.stderr)
    events = [json.loads(line) for line in saved.stdout.splitlines()]
    assert [e["incident_id"] for e in events] == [HOSTILE_ID, f"EVIL-2 {CLEAR}{C1_CSI}",
                                                 f"BAD {OSC_TITLE}"]
    assert "incident 'BAD \\x1b]0;title\\x07'" in saved.stderr


def test_similar_table_json_and_errors_are_escaped(hostile: Path, tmp_path: Path) -> None:
    incidex("--save", str(hostile))
    table = incidex("similar", "phishing invoice macro", "-k", "3")
    assert table.returncode == 0, table.stderr
    clean(table.stdout, table.stderr)
    # The two hostile incidents share their text: either may stand for the folded pair.
    assert "\\x1b[2J" in table.stdout and "near-duplicate" in table.stdout
    assert "[bold red]x [@click=app.quit]y[/]" in table.stdout
    as_json = incidex("similar", "--incident", HOSTILE_ID, "--json")
    clean(as_json.stdout, as_json.stderr)
    hits = json.loads(as_json.stdout)["results"]
    assert hits[0]["title"].startswith(HOSTILE_TITLE)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"NOPE {OSC_TITLE}\n")
    missing = incidex("similar", "--incidents-from", str(ids))
    assert missing.returncode == 1
    clean(missing.stdout, missing.stderr)
    assert "NOPE \\x1b]0;title\\x07" in missing.stderr


def test_verify_and_cache_stats_are_escaped(hostile: Path, isolated_directories: Path) -> None:
    import sqlite3

    incidex("--save", str(hostile))
    for args in (("cache", "stats"), ("cache", "stats", "--json")):
        result = incidex(*args)
        assert result.returncode == 0, (args, result.stderr)
        clean(result.stdout, result.stderr)
    with sqlite3.connect(isolated_directories / "incident_analysis.db") as connection:
        connection.execute("UPDATE embeddings SET embedder = ? WHERE analysis_pk = 1",
                           (f"evil{OSC_TITLE}",))
    drift = incidex("verify")
    assert drift.returncode == 1
    clean(drift.stdout, drift.stderr)
    assert "evil\\x1b]0;title\\x07" in drift.stdout
    as_json = incidex("verify", "--json")
    clean(as_json.stdout, as_json.stderr)
    assert any(OSC_TITLE in name for name in json.loads(as_json.stdout)["other_embedders"])


def test_commands_write_only_through_tui_output() -> None:
    """Human and JSON output goes through tui/output.py, which escapes; nothing writes around it."""
    tui = Path(__file__).resolve().parents[1] / "tui"
    writers = re.compile(r"\bclick\.echo\(|\bclick\.secho\(|(?<![\w.])print\(|\.write\(")
    offenders = [f"{path.name}:{number}" for path in sorted(tui.glob("*.py"))
                 if path.name != "output.py"
                 and (path.name.startswith("cli") or path.name == "headless.py")
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if writers.search(line)]
    assert offenders == []
