"""A real save server (`incidex serve`) for a test: started, awaited on its socket, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tui.save_client import Place, locate

SERVE = [sys.executable, "-m", "tui.cli", "serve"]
# What each server started by running_server() wrote on stderr, by pid, once it has stopped.
SERVER_LOGS: dict[int, str] = {}


def wait_for(condition: object, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lock_holder(place: Place) -> int | None:
    """The pid written in the lock file, if the lock file holds one."""
    try:
        text = place.lock_path.read_text().strip()
    except OSError:
        return None
    return int(text) if text else None


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie, dead but not yet reaped by its parent, does not count)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def running_server(*arguments: str, env: dict[str, str] | None = None
                   ) -> Iterator[tuple[subprocess.Popen[bytes], Place]]:
    """`incidex serve` for the current environment (plus env), ready on its socket."""
    environment = {**os.environ, **(env or {})}
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        place = locate()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen([*SERVE, *arguments], env=environment, stdout=subprocess.DEVNULL,
                               stderr=log)
    try:
        wait_for(lambda: place.socket_path.exists() or process.poll() is not None,
                 what="the save server's socket")
        if process.poll() is not None:
            log.seek(0)
            raise AssertionError(f"incidex serve exited: {log.read()!r}")
        yield process, place
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.seek(0)
        SERVER_LOGS[process.pid] = log.read().decode(errors="replace")
        log.close()
