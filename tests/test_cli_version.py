"""`incidex --version`: the package version, at once, with nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from tests.test_cli_similar import incidex

HEAVY = {"pydantic", "pydantic_settings", "sqlalchemy", "sqlmodel", "textual", "rich", "numpy",
         "faiss", "redis", "diskcache", "alembic", "langchain_openai", "sklearn"}


def test_version_prints_the_package_version() -> None:
    result = incidex("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"incidex {version('incidex')}\n"


def test_version_answers_even_when_the_settings_are_broken() -> None:
    result = incidex("--version", env={"INCIDEX_BUSY_TIMEOUT_SECONDS": "abc"})
    assert result.returncode == 0 and result.stdout.startswith("incidex ")


def test_version_imports_nothing_heavy() -> None:
    probe = ("import runpy, sys\n"
             "sys.argv = ['incidex', '--version']\n"
             "try:\n    runpy.run_module('tui.cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    loaded = set(result.stdout.split())
    assert loaded & HEAVY == set()
