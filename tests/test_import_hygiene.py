"""Layering: store/ is a plain library; the packages imported are this repository's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def imported_after(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


def test_store_never_imports_textual_or_rich() -> None:
    modules = (
        "store.store, store.ingest.stream, store.backup.json_files, store.db.queries, "
        "store.db.writes"
    )
    loaded = imported_after(f"import {modules}")
    assert "textual" not in loaded and "rich" not in loaded


def test_store_and_tui_are_this_repository() -> None:
    import store
    import tui
    import widgets

    for package in (store, tui, widgets):
        assert Path(package.__file__).resolve().parent.parent == REPO_ROOT


def test_no_store_module_imports_textual_at_all() -> None:
    offenders = [path.name for path in (REPO_ROOT / "store").rglob("*.py")
                 if "import textual" in path.read_text() or "from textual" in path.read_text()
                 or "from rich" in path.read_text() or "import rich" in path.read_text()]
    assert offenders == []


def test_widgets_never_import_store() -> None:
    offenders = [path.name for path in (REPO_ROOT / "widgets").rglob("*.py")
                 if re.search(r"^\s*(from|import) store\b", path.read_text(), re.MULTILINE)]
    assert offenders == []


def test_the_command_line_module_does_not_import_textual() -> None:
    loaded = imported_after("import tui.cli, tui.headless")
    assert "textual" not in loaded
