"""A real terminal keeps its title and its screen when incidex shows hostile stored text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.hostile import hostile_record
from tests.tui.conftest import fixed_record, save_records
from tests.tui.test_tmux_smoke import WAIT_SECONDS, Tmux, start_incidex, tmux  # noqa: F401

TITLE = "incidex-title-probe"


def test_osc_sequences_in_stored_text_never_reach_the_terminal(
        tmux: Tmux, tui_settings: Any, tmp_path: Path) -> None:  # noqa: F811
    from store.store import Store

    with Store.open(tui_settings) as store:
        save_records(store, [fixed_record(0), hostile_record()])
    exit_file = tmp_path / "exit-code"
    start_incidex(tmux, exit_file)
    tmux.run("select-pane", "-t", "smoke", "-T", TITLE)
    screen = tmux.wait_for("row 1 of 2")
    assert "[/]\\x1b" in screen and "[bold red]x [@click=app.quit]y[/] \\x1b]0;" in screen
    tmux.keys("g", "Enter")
    tmux.wait_for("Analyses (1)")
    tmux.keys("i")  # at 80x24 the header shows the description only when asked
    tmux.wait_for("\\x1b]8;;http://evil.example/")
    tmux.keys("v")
    tmux.wait_for('"\\u001b[2J": "\\u001b]0;title\\u0007"')
    tmux.keys("f")
    tmux.wait_for("similar to [/]\\x1b[2J", "INC-0001")
    assert tmux.run("display", "-p", "-t", "smoke", "#{pane_title}").strip() == TITLE
    tmux.keys("q")
    deadline = time.monotonic() + WAIT_SECONDS
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert exit_file.read_text().strip() == "EXIT=0"
