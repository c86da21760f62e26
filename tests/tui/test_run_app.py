"""Starting the app: a store that cannot be opened is one clear line and exit code 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def unopenable_url(tmp_path: Path) -> str:
    """A SQLite URL under a regular file: no directory can be made there."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return f"sqlite:///{blocker}/x.db"


def test_run_app_reports_an_unavailable_store(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from store.settings import Settings
    from tui.app import run_app
    from tui.exit_codes import ExitCode

    settings = Settings(data_dir=tmp_path, database_url=unopenable_url(tmp_path))
    # The app paints first and opens the store in a worker; the failure ends it.
    assert run_app(settings, headless=True) == ExitCode.STORE_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith("incidex: cannot ") and err.count("\n") == 1


def test_the_command_exits_3_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "INCIDEX_DATABASE_URL": unopenable_url(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "tui.cli"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert done.stderr.strip().startswith("incidex: cannot ")
    assert len(done.stderr.strip().splitlines()) == 1
