"""Commands that read or maintain a store never create one; bad filters and a down cache say so."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import make_record
from tests.test_cli_similar import filled, incidex  # noqa: F401 - filled is a fixture

READ_ONLY = [("verify",), ("similar", "phishing"), ("cache", "stats"), ("reindex",),
             ("cache", "clear"), ("cache", "warm")]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("incidex: "), stderr
    return lines[0]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_mistyped_data_directory_is_an_error_not_a_new_store(command: tuple[str, ...],
                                                               tmp_path: Path) -> None:
    mistyped = tmp_path / "dta"
    result = incidex(*command, env={"INCIDEX_DATA_DIR": str(mistyped)})
    assert result.returncode == 3
    assert f"no data directory {mistyped}" in one_line(result.stderr)
    assert not mistyped.exists()


def test_a_directory_without_a_database_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = incidex("verify", env={"INCIDEX_DATA_DIR": str(empty)})
    assert result.returncode == 3 and "in step" not in result.stdout
    assert f"no store at {empty / 'incident_analysis.db'}" in one_line(result.stderr)
    assert list(empty.iterdir()) == []


def test_a_severity_no_analysis_has_is_a_usage_error(filled: Path, tmp_path: Path  # noqa: F811
                                                     ) -> None:
    urgent = incidex("similar", "phishing", "--severity", "urgent")
    assert urgent.returncode == 2 and urgent.stdout == ""
    assert "no analysis has the severity 'urgent'" in one_line(urgent.stderr)
    assert incidex("similar", "phishing", "--severity", "HIGH").returncode == 0
    own_word = make_record("P1-INC", analysis={"summary": "phishing", "severity": "P1"})
    source = tmp_path / "p1.jsonl"
    source.write_text(json.dumps(own_word) + "\n")
    assert incidex("--save", str(source)).returncode == 0
    assert incidex("similar", "phishing", "--severity", "p1").returncode == 0


def test_clearing_an_unknown_namespace_is_a_usage_error(filled: Path) -> None:  # noqa: F811
    result = incidex("cache", "clear", "--namespace", "bogus")
    assert result.returncode == 2
    assert "'bogus' is not one of 'embed', 'similar', 'chat'" in one_line(result.stderr)


def test_clearing_a_cache_whose_redis_is_down_fails(filled: Path) -> None:  # noqa: F811
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = incidex("cache", "clear",
                     env={"INCIDEX_REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"})
    assert result.returncode == 3
    assert "the redis cache is down, nothing was removed there" in one_line(result.stderr)
    assert "entries removed" not in result.stderr
