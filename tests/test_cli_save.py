"""`incidex --save` as scripts use it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_record
from tests.support.journal import journaled_ids
from tests.support.save_server import running_server

INCIDEX = [sys.executable, "-m", "tui.cli"]


@pytest.fixture(autouse=True, params=["in process", "save server"])
def save_path(request: pytest.FixtureRequest, isolated_directories: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test here runs twice: saving in process, and handed to a running save server
    (INCIDEX_SAVE_SERVER=required: the server must answer)."""
    if request.param == "in process":
        yield request.param
        return
    monkeypatch.setenv("INCIDEX_SAVE_SERVER", "required")
    with running_server():
        yield request.param


def run_save(source: str | Path, *, stdin: bytes | None = None, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    # Other settings than the server's (env) are another fingerprint: no server for them, so
    # those runs save in process ("on": use a server only if one answers).
    if env and os.environ.get("INCIDEX_SAVE_SERVER") == "required":
        env = {"INCIDEX_SAVE_SERVER": "on", **env}
    return subprocess.run([*INCIDEX, "--save", str(source)], input=stdin, capture_output=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def jsonl(*records: Any) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def count_rows(data_dir: Path, table: str) -> int:
    with sqlite3.connect(data_dir / "incident_analysis.db") as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_jsonl_array_and_single_document_all_save(tmp_path: Path, isolated_directories: Path
                                                  ) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(make_record("A-1"), make_record("A-2")))
    (tmp_path / "b.json").write_text(json.dumps([make_record("B-1"), make_record("B-2")]))
    (tmp_path / "c.json").write_text(json.dumps(make_record("C-1"), indent=2))
    for name in ("a.jsonl", "b.json", "c.json"):
        result = run_save(tmp_path / name)
        assert result.returncode == 0, result.stderr
        assert {line["status"] for line in lines(result)} == {"saved"}
        assert result.stderr == b""
    assert count_rows(isolated_directories, "analyses") == 5
    assert len(journaled_ids(isolated_directories / "backups")) == 5


def test_stdin_and_duplicates(isolated_directories: Path) -> None:
    payload = jsonl(make_record("S-1"))
    assert lines(run_save("-", stdin=payload))[0]["status"] == "saved"
    again = run_save("-", stdin=payload)
    assert again.returncode == 0
    assert lines(again)[0]["status"] == "duplicate"


BAD_LINES = {
    "malformed JSON": (b'{"incident": {"incident_id": "X"', "line 2: invalid JSON"),
    "missing incident_id": (json.dumps({**make_record(), "incident": {"title": "t"}}).encode(),
                            "line 2: incident.incident_id: is required"),
    "empty incident_id": (json.dumps(make_record("   ")).encode(),
                          "line 2: incident.incident_id: must not be empty"),
    "wrong type": (json.dumps({**make_record("W-1"), "usage": {"input_tokens": "many"}}).encode(),
                   "line 2 (incident 'W-1'): usage.input_tokens: input should be a valid integer"),
    "analysis not an object": (json.dumps({**make_record("N-1"), "analysis": "ok"}).encode(),
                               "line 2 (incident 'N-1'): analysis: must be a JSON object, "
                               "got a string"),
    "record not an object": (b"[1, 2]", "line 2: expected a JSON object, got an array"),
    "NUL byte": (json.dumps(make_record("NUL\u0000ID")).encode(),
                 "): incident.incident_id: contains a NUL character"),
    "invalid UTF-8": (b'{"incident": {"incident_id": "\xff\xfe"}}',
                      "line 2: invalid UTF-8 at byte"),
    "NaN": (json.dumps(make_record("NAN-1")).replace('"high"', "NaN").encode(),
            "line 2: invalid JSON: NaN is not valid JSON"),
    "end before start": (json.dumps({**make_record("T-1"), "usage": {
        "start_time": "2026-11-20T10:00:00Z", "end_time": "2026-11-20T09:00:00Z"}}).encode(),
        "usage.end_time: is before usage.start_time"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_one_bad_line_among_good_ones(case: str, tmp_path: Path, isolated_directories: Path
                                      ) -> None:
    bad, expected = BAD_LINES[case]
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(make_record("G-1")) + bad + b"\n" + jsonl(make_record("G-3")))
    result = run_save(source)
    assert result.returncode == 1
    statuses = [line["status"] for line in lines(result)]
    assert statuses == ["saved", "error", "saved"]
    stderr = result.stderr.decode()
    assert expected in stderr, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[0].startswith("incidex: line 2")
    assert len(stderr.splitlines()) == 2  # the record's line, then the summary line
    assert count_rows(isolated_directories, "analyses") == 2


def test_a_10_mb_description_is_refused_by_name(tmp_path: Path, isolated_directories: Path
                                                ) -> None:
    huge = make_record("BIG-1")
    huge["incident"]["description"] = "A" * (10 * 1024 * 1024)
    source = tmp_path / "big.jsonl"
    source.write_bytes(jsonl(make_record("G-1"), huge))
    result = run_save(source)
    assert result.returncode == 1
    assert "line 2 (incident 'BIG-1'): incident.description: 10,485,760 characters, over the " \
           "limit of 1,000,000 (INCIDEX_MAX_TEXT_CHARS)" in result.stderr.decode()
    assert count_rows(isolated_directories, "incidents") == 1


def test_a_10_mb_description_saves_when_the_limit_allows(tmp_path: Path, isolated_directories: Path
                                                         ) -> None:
    huge = make_record("BIG-2")
    huge["incident"]["description"] = "lorem ipsum " * 900_000
    source = tmp_path / "big.jsonl"
    source.write_bytes(jsonl(huge))
    result = run_save(source, env={"INCIDEX_MAX_TEXT_CHARS": str(20 * 1024 * 1024)})
    assert result.returncode == 0, result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    directory = run_save(tmp_path)
    assert directory.returncode == 2
    assert directory.stderr.decode().strip() == f"incidex: cannot read {tmp_path}: is a directory"
    missing = run_save(tmp_path / "nope.jsonl")
    assert missing.returncode == 2 and b"no such file" in missing.stderr


def test_unopenable_store_exits_3(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(jsonl(make_record()))
    result = run_save(tmp_path / "in.jsonl",
                      env={"INCIDEX_DATABASE_URL": "postgresql://127.0.0.1:1/none"})
    assert result.returncode == 3
    assert result.stderr.decode().startswith("incidex: cannot open the store")
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    result = run_save(tmp_path / "in.jsonl", env={"INCIDEX_DATA_DIR": str(blocked / "data")})
    assert result.returncode == 3 and b"Traceback" not in result.stderr


def test_empty_input_saves_nothing_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    result = run_save(tmp_path / "empty.jsonl")
    assert result.returncode == 0 and result.stdout == b""


def test_save_never_imports_textual(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(jsonl(make_record()))
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['incidex', '--save', {str(tmp_path / 'in.jsonl')!r}]\n"
        "try:\n    runpy.run_module('tui.cli', run_name='__main__')\n"
        "except SystemExit as done:\n    assert done.code == 0, done.code\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "print('LOADED=' + ','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip().splitlines()[-1] == "LOADED="
