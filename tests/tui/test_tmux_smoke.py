"""A real terminal: incidex runs in tmux at 120x36, keys go in, the screen text comes out."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, REPO_ROOT
from tests.tui.conftest import fixed_records, save_records

WAIT_SECONDS = 30.0
PASSED_ENV = ("INCIDEX_DATA_DIR", "XDG_CONFIG_HOME", "INCIDEX_SECRETS_DIR", "INCIDEX_BACKUP_AUTO",
              "HOME", "PATH")


class Tmux:
    """A private tmux server (its own socket) holding one session."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10, check=True)
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "smoke")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "smoke", *keys)

    def wait_for(self, *texts: str, absent: tuple[str, ...] = (),
                 timeout: float = WAIT_SECONDS) -> str:
        """Poll the pane until every text shows and none of `absent` does (tmux has no event
        to await)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts) and not any(a in screen for a in absent):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts!r} never all appeared (without {absent!r}); the "
                                     f"screen was:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux must be installed in CI")
        pytest.skip("tmux is not installed")
    server = Tmux(f"incidex-smoke-{uuid.uuid4().hex[:8]}")
    yield server
    subprocess.run(["tmux", "-L", server.socket, "kill-server"], capture_output=True,
                   timeout=10)


def start_incidex(tmux: Tmux, exit_file: Path) -> None:
    environment = " ".join(f"{name}={shlex.quote(os.environ[name])}" for name in PASSED_ENV
                           if name in os.environ)
    command = (f"cd {shlex.quote(str(REPO_ROOT))} && env {environment} "
               f"{shlex.quote(sys.executable)} -m tui.cli; "
               f"echo EXIT=$? > {shlex.quote(str(exit_file))}")
    tmux.run("new-session", "-d", "-s", "smoke", "-x", "120", "-y", "36",
             f"sh -c {shlex.quote(command)}")


def test_incidex_in_a_real_terminal(tmux: Tmux, tui_settings: Any, tmp_path: Path) -> None:
    from store.store import Store

    with Store.open(tui_settings) as store:
        save_records(store, fixed_records())
    exit_file = tmp_path / "exit-code"
    start_incidex(tmux, exit_file)
    # The footer is up from the first frame, before the store opened: wait for the last row
    # too (tmux may show the status line of an update before the rows below it).
    screen = tmux.wait_for("row 1 of 10", "? Keys", "INC-0010")
    assert "INC-0001" in screen and "Phishing e-mail with invoice macro" in screen
    assert "/ Filter" in screen and "INC-0010" in screen
    tmux.keys("j")
    tmux.wait_for("row 2 of 10")
    tmux.keys("Enter")
    screen = tmux.wait_for("Analyses (2)", "esc Back", "gpt-4o-mini")
    assert "Ransomware encrypted file shares in logistics" in screen
    assert "severity: \"critical\"" in screen
    tmux.keys("Escape")
    tmux.wait_for("row 2 of 10")
    tmux.keys("?")
    screen = tmux.wait_for("Binding id", "Esc, ? or q closes")
    assert "Incident list" in screen and "list.filter" in screen
    tmux.keys("q")
    tmux.wait_for("row 2 of 10")
    tmux.keys(":")
    tmux.wait_for("Go to incident")
    for key in "inc-0007":
        tmux.keys(key)
    tmux.keys("Enter")
    screen = tmux.wait_for("Cobalt Strike beacon on a finance workstation", "esc Back",
                           "Analyses (1)")
    assert "INC-0007" in screen.splitlines()[1], screen  # the incident's own header line
    assert "row 2 of 10" not in screen
    tmux.keys("Escape")
    tmux.wait_for("row 2 of 10")
    for _ in range(2):
        tmux.keys("s")
    screen = tmux.wait_for("sorted by severity, worst first")
    first_rows = [line for line in screen.splitlines() if "INC-00" in line][:3]
    assert all("critical" in line for line in first_rows), screen
    assert "INC-0002" in first_rows[0]
    tmux.keys("f")
    tmux.wait_for("similar to INC-0002", "s Severity")
    for _ in range(4):
        tmux.keys("s")
    # The status names the filter at once, while the search runs: wait for its answer.
    screen = tmux.wait_for("severity ≥ critical · ", "similar to INC-0002",
                           absent=("Searching",))
    hit_rows = [line for line in screen.splitlines() if "INC-00" in line and "why:" not in line
                and "similar to" not in line]
    assert hit_rows and all("critical" in line for line in hit_rows), screen
    tmux.keys("Escape")
    tmux.wait_for("sorted by severity, worst first")
    tmux.keys("q")
    asked = time.monotonic()
    deadline = asked + WAIT_SECONDS
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    quit_seconds = time.monotonic() - asked
    assert exit_file.read_text().strip() == "EXIT=0"
    # A generous bound: quitting took about 1.5 s before it skipped the teardown, 0.3 s after.
    assert quit_seconds < 5, quit_seconds
