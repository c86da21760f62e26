"""Pending vectors filled from the command line: `reindex --pending --follow` beside saves, and
`backup run-due`."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.store.test_similar import family_record
from tests.test_cli_similar import incidex

PENDING = {"INCIDEX_EMBED_ON_SAVE": "false"}  # as the local model's saves leave them


def _save_pending(tmp_path: Path, name: str, numbers: range) -> None:
    records = [family_record(("phish", "ransom", "bucket")[n % 3], n) for n in numbers]
    source = tmp_path / f"{name}.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    saved = incidex("--save", str(source), env=PENDING)
    assert saved.returncode == 0, saved.stderr


def _lines(stream: object) -> queue.Queue[str]:
    """The stream's lines as they come, read by a thread (so a test can wait with a limit)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], wanted: str, seconds: float = 60) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            break
        if wanted in seen[-1]:
            return seen
    raise AssertionError(f"no line with {wanted!r} within {seconds} s: {seen}")


def _pending_count() -> int:
    return int(json.loads(incidex("verify", "--json").stdout)["pending"])


@pytest.mark.slow
def test_reindex_pending_follow_fills_saves_as_they_come(tmp_path: Path) -> None:
    _save_pending(tmp_path, "first", range(6))
    follower = subprocess.Popen([sys.executable, "-m", "tui.cli", "reindex", "--pending",
                                 "--follow"], stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "INCIDEX_DEBUG": "1"})
    try:
        lines = _lines(follower.stderr)
        _wait_for(lines, "vectors filled: 6, pending: 0")
        _save_pending(tmp_path, "more", range(6, 10))
        _wait_for(lines, "vectors filled: 10, pending: 0")
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=60) == 130
        _wait_for(lines, "10 vectors written with hashed-concepts-v1")
    finally:
        if follower.poll() is None:
            follower.kill()
    assert _pending_count() == 0
    assert incidex("verify").returncode == 0


def test_follow_goes_with_pending() -> None:
    refused = incidex("reindex", "--follow")
    assert refused.returncode == 2 and "--follow goes with --pending" in refused.stderr


def test_backup_run_due_fills_pending_vectors(tmp_path: Path) -> None:
    _save_pending(tmp_path, "in", range(5))
    assert _pending_count() == 5
    done = incidex("backup", "run-due")
    assert done.returncode == 0, done.stderr
    assert "filled 5 pending vectors" in done.stdout.splitlines()
    assert _pending_count() == 0
    again = incidex("backup", "run-due")
    assert "pending vectors" not in again.stdout


SAVE_AND_TELL = """
import runpy, sys
sys.argv = ["incidex", "--save", sys.argv[1]]
try:
    runpy.run_module("tui.cli", run_name="__main__")
except SystemExit as exit_code:
    print(f"exit {exit_code.code}; model loaded: {'torch' in sys.modules}", file=sys.stderr)
"""


def test_a_save_with_the_model_configured_never_loads_it(tmp_path: Path) -> None:
    records = [family_record("ransom", n) for n in range(3)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = subprocess.run([sys.executable, "-c", SAVE_AND_TELL, str(source)], text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "INCIDEX_EMBEDDER": "all-minilm-l6-v2"})
    assert done.stdout.count('"status": "saved"') == 3, done.stderr
    assert "exit 0; model loaded: False" in done.stderr
    assert json.loads(incidex("verify", "--json", env={
        "INCIDEX_EMBEDDER": "all-minilm-l6-v2"}).stdout)["pending"] == 3
