"""`incidex --save` against hostile input: no record sinks the others, no input stalls the run."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import make_record
from tests.test_cli_save import INCIDEX, count_rows, jsonl, lines, run_save

DEEP = 1_500


def deep_record(incident_id: str) -> bytes:
    record = json.dumps(make_record(incident_id))
    nested = "[" * DEEP + "]" * DEEP
    return record.replace('"severity": "high"', f'"severity": "high", "x": {nested}').encode()


HOSTILE = {
    "deep JSON": (deep_record("DEEP-1"), "analysis.x: nested deeper than 250 levels"),
    "64-bit tokens": (json.dumps({**make_record("BIG-1"), "usage": {"input_tokens": 2**70}}
                                 ).encode(),
                      "usage.input_tokens: input should be less than or equal to 1000000000"),
    "near 2^63 tokens": (json.dumps({**make_record("BIG-2"),
                                     "usage": {"input_tokens": 2**63 - 10}}).encode(),
                         "usage.input_tokens: input should be less than or equal to"),
    "unpaired surrogate id": (json.dumps(make_record("SUR-\udc80")).encode(),
                              "incident.incident_id: contains an unpaired surrogate"),
    "1e999": (json.dumps(make_record("INF-1")).replace('"high"', "1e999").encode(),
              "invalid JSON: number 1e999 is out of range"),
}


def test_each_hostile_record_fails_alone_and_the_others_are_saved(
        tmp_path: Path, isolated_directories: Path) -> None:
    names = sorted(HOSTILE)
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(make_record("G-0")) + b"".join(HOSTILE[n][0] + b"\n" for n in names)
                       + jsonl(make_record("G-9")))
    result = run_save(source, env={"PYTHONIOENCODING": "utf-8:strict"})
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    statuses = [line["status"] for line in lines(result)]
    assert statuses == ["saved", *["error"] * len(names), "saved"]
    for number, name in enumerate(names, start=2):
        assert f"incidex: line {number}" in stderr
        assert HOSTILE[name][1] in stderr, (name, stderr)
    assert count_rows(isolated_directories, "analyses") == 2


def test_a_deep_element_of_an_array_fails_alone(tmp_path: Path, isolated_directories: Path
                                                ) -> None:
    source = tmp_path / "in.json"
    source.write_bytes(b"[" + json.dumps(make_record("A-1")).encode() + b",\n"
                       + deep_record("A-2") + b",\n" + json.dumps(make_record("A-3")).encode()
                       + b"]")
    result = run_save(source)
    assert [line["status"] for line in lines(result)] == ["saved", "error", "saved"]
    assert "record 2: analysis.x: nested deeper than 250 levels" in result.stderr.decode()
    assert result.returncode == 1


def test_an_array_over_the_document_limit_is_refused_unread(tmp_path: Path,
                                                            isolated_directories: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps([make_record(f"A-{n}") for n in range(20)], indent=1))
    result = run_save(source, env={"INCIDEX_MAX_DOCUMENT_BYTES": "4000"})
    assert result.returncode == 1
    assert ("incidex: input: a JSON document over the limit of 4,000 bytes "
            "(INCIDEX_MAX_DOCUMENT_BYTES)") in result.stderr.decode()
    assert count_rows(isolated_directories, "analyses") == 0


def test_an_endless_line_is_skipped_in_bounded_memory(isolated_directories: Path) -> None:
    """300 MB without a newline, then a good record: the line is refused, memory stays flat."""
    process = subprocess.Popen(
        [sys.executable, "-c",
         "import runpy, sys\n"
         "sys.argv = ['incidex', '--save', '-']\n"
         "try:\n    runpy.run_module('tui.cli', run_name='__main__')\n"
         "except SystemExit as done:\n"
         # VmHWM is this program's own peak (ru_maxrss also counts the parent's, from
         # before the exec).
         "    status = open('/proc/self/status').read()\n"
         "    peak = status.split('VmHWM:')[1].split()[0]\n"
         "    print(f'PEAK_KB={peak}', file=sys.stderr)\n"
         "    raise\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "INCIDEX_MAX_DOCUMENT_BYTES": "1000000"})
    assert process.stdin is not None
    block = b"7" * (1 << 20)
    for _ in range(300):
        process.stdin.write(block)
    process.stdin.write(b"\n" + jsonl(make_record("AFTER-1")))
    process.stdin.close()
    process.wait(timeout=300)
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = process.stdout.read(), process.stderr.read()
    outcome = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [line["status"] for line in outcome] == ["error", "saved"], stderr
    assert "line 1: a JSON line over the limit of 1,000,000 bytes" in stderr.decode()
    peak_kb = int(stderr.decode().rsplit("PEAK_KB=", 1)[1].split()[0])
    assert peak_kb < 250_000, f"peak RSS {peak_kb} kB for a 300 MB line"  # about 150,000
    assert process.returncode == 1


def test_records_without_model_name_get_the_chat_model_setting(tmp_path: Path,
                                                                isolated_directories: Path
                                                                ) -> None:
    bare = make_record("M-1")
    del bare["model_name"]
    null = {**make_record("M-2"), "model_name": None}
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(bare, null, make_record("M-3")))
    result = run_save(source, env={"INCIDEX_CHAT_MODEL": "local-llama-3"})
    assert result.returncode == 0, result.stderr
    import sqlite3

    with sqlite3.connect(isolated_directories / "incident_analysis.db") as connection:
        models = dict(connection.execute("SELECT incident_id, model_name FROM analyses"))
        runs = dict(connection.execute("SELECT incident_id, model_name FROM run_metadata"))
    assert models == {"M-1": "local-llama-3", "M-2": "local-llama-3", "M-3": "gpt-4o-mini"}
    assert runs == models


# A piped producer ------------------------------------------------------------------------


def read_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no result line within {timeout} s"
    return dict(json.loads(process.stdout.readline()))


def start_piped_save() -> subprocess.Popen[bytes]:
    return subprocess.Popen([*INCIDEX, "--save", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)


def send(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(data)
    process.stdin.flush()


def test_a_piped_producer_sees_each_result_before_its_input_ends(isolated_directories: Path
                                                                 ) -> None:
    process = start_piped_save()
    try:
        send(process, jsonl(make_record("P-1")))
        assert read_line(process, 60)["incident_id"] == "P-1"
        send(process, jsonl(make_record("P-2")))
        second = read_line(process, 10)
        assert (second["incident_id"], second["status"]) == ("P-2", "saved")
        assert count_rows(isolated_directories, "analyses") == 2
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=60)
    assert process.returncode == 0


def interrupted_save(isolated_directories: Path, signal_number: int) -> None:
    process = start_piped_save()
    send(process, jsonl(make_record("I-1"), make_record("I-2")))
    assert {read_line(process, 60)["incident_id"], read_line(process, 10)["incident_id"]} == {
        "I-1", "I-2"}
    # A complete record and a half-written one, then the signal.
    send(process, jsonl(make_record("I-3")) + json.dumps(make_record("I-4")).encode()[:40])
    time.sleep(0.5)
    process.send_signal(signal_number)
    process.wait(timeout=60)  # stdin stays open: the half-written record never ends
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.returncode == 130, stderr
    assert [json.loads(line)["incident_id"] for line in stdout.decode().splitlines()] == ["I-3"]
    assert "interrupted" in stderr.decode()
    assert count_rows(isolated_directories, "analyses") == 3


def test_sigint_saves_the_complete_records_then_exits_130(isolated_directories: Path) -> None:
    interrupted_save(isolated_directories, signal.SIGINT)


def test_sigterm_saves_the_complete_records_then_exits_130(isolated_directories: Path) -> None:
    interrupted_save(isolated_directories, signal.SIGTERM)
