"""o hands the terminal to $PAGER with the analysis in a private temporary file (real tmux)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT
from tests.tui.conftest import fixed_records, save_records
from tests.tui.test_tmux_smoke import PASSED_ENV, WAIT_SECONDS, Tmux, tmux  # noqa: F401


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # a file written by another process: nothing to await
    assert path.exists(), f"{path} never appeared"


def test_o_opens_the_analysis_in_the_pager_and_the_app_comes_back(
        tmux: Tmux, tui_settings: Any, tmp_path: Path) -> None:  # noqa: F811
    from store.store import Store

    with Store.open(tui_settings) as store:
        save_records(store, fixed_records())
    seen = tmp_path / "seen"
    seen.mkdir()
    pager = tmp_path / "pager.sh"
    pager.write_text("#!/bin/sh\n"
                     f'cp "$1" {seen}/received.json\n'
                     f'stat -c %a "$1" > {seen}/mode\n'
                     f'stat -c %a "$(dirname "$1")" > {seen}/folder-mode\n'
                     f'echo "$1" > {seen}/path.tmp && mv {seen}/path.tmp {seen}/path\n')
    pager.chmod(0o755)
    exit_file = tmp_path / "exit-code"
    environment = " ".join(f"{name}={shlex.quote(os.environ[name])}" for name in PASSED_ENV
                           if name in os.environ)
    command = (f"cd {shlex.quote(str(REPO_ROOT))} && env {environment} "
               f"PAGER={shlex.quote(str(pager))} {shlex.quote(sys.executable)} -m tui.cli; "
               f"echo EXIT=$? > {shlex.quote(str(exit_file))}")
    tmux.run("new-session", "-d", "-s", "smoke", "-x", "120", "-y", "36",
             f"sh -c {shlex.quote(command)}")
    tmux.wait_for("row 1 of 10")
    tmux.keys("j")
    tmux.wait_for("row 2 of 10")
    tmux.keys("Enter")
    tmux.wait_for("Analyses (2)", "esc Back")
    tmux.keys("o")
    _wait_for_file(seen / "path")
    received = json.loads((seen / "received.json").read_text())
    assert received["severity"] == "critical" and received["summary"].startswith("Ransomware")
    assert (seen / "mode").read_text().strip() == "600"
    assert (seen / "folder-mode").read_text().strip() == "700"
    # The app is back: it answers keys, and the temporary file is gone.
    screen = tmux.wait_for("Analyses (2)", "esc Back")
    assert "Ransomware encrypted file shares in logistics" in screen
    viewed = Path((seen / "path").read_text().strip())
    deadline = time.monotonic() + WAIT_SECONDS
    # rmtree removes the file, then its folder: wait for both.
    while viewed.parent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not viewed.exists() and not viewed.parent.exists()
    tmux.keys("Escape")
    tmux.wait_for("row 2 of 10")
    tmux.keys("q")
    _wait_for_file(exit_file)
    assert exit_file.read_text().strip() == "EXIT=0"


def test_capital_o_opens_the_editor_and_says_edits_are_not_saved(
        tmux: Tmux, tui_settings: Any, tmp_path: Path) -> None:  # noqa: F811
    from store.store import Store

    with Store.open(tui_settings) as store:
        save_records(store, fixed_records())
    edited = tmp_path / "edited"
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\n"
                      "sed -i 's/critical/low/' \"$1\"\n"
                      f"touch {edited}\n")
    editor.chmod(0o755)
    environment = " ".join(f"{name}={shlex.quote(os.environ[name])}" for name in PASSED_ENV
                           if name in os.environ)
    command = (f"cd {shlex.quote(str(REPO_ROOT))} && env -u VISUAL {environment} "
               f"EDITOR={shlex.quote(str(editor))} {shlex.quote(sys.executable)} -m tui.cli")
    tmux.run("new-session", "-d", "-s", "smoke", "-x", "120", "-y", "36",
             f"sh -c {shlex.quote(command)}")
    tmux.wait_for("row 1 of 10")
    tmux.keys("j")
    tmux.wait_for("row 2 of 10")
    tmux.keys("Enter")
    tmux.wait_for("Analyses (2)", "esc Back")
    tmux.keys("O")
    _wait_for_file(edited)
    screen = tmux.wait_for("Edits made there are not saved")
    assert "read-only" in screen and 'severity: "critical"' in screen
    tmux.keys("q")
