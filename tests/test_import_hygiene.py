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
        "store.store, store.ingest.stream, store.backup.journal, store.db.queries, "
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


def imported_by_cli(arguments: list[str], cwd: Path) -> set[str]:
    """Modules loaded by one run of the incidex command line with arguments."""
    probe = ("import sys\n"
             f"sys.argv = ['incidex', *{arguments!r}]\n"
             "try:\n    from tui.cli import main\n    main()\n"
             "except SystemExit:\n    pass\n"
             "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, cwd=cwd, check=True)
    return set(result.stderr.split())


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


HEAVY_FOR_SAVE = {"textual", "rich", "langchain", "langchain_core", "langchain_openai", "openai",
                  "faiss", "sklearn", "wordfreq", "redis", "diskcache", "alembic", "tiktoken"}


def test_help_loads_no_store_and_no_terminal_library(tmp_path: Path) -> None:
    loaded = imported_by_cli(["--help"], tmp_path)
    assert packages(loaded) & {"textual", "rich", "langchain_openai", "sqlalchemy", "sqlmodel",
                               "pydantic_settings", "numpy", "faiss"} == set()
    assert not {module for module in loaded if module.startswith(("store.", "tui.cli_"))} - {
        "store.errors"}


def test_a_one_record_save_loads_only_what_saving_needs(tmp_path: Path) -> None:
    record = tmp_path / "one.jsonl"
    record.write_text('{"incident": {"incident_id": "INC-1", "title": "Phishing"}, '
                      '"analysis": {"summary": "Credential phishing", "severity": "high"}}\n')
    arguments = ["--data-dir", str(tmp_path / "data"), "--save", str(record)]
    imported_by_cli(arguments, tmp_path)  # creates the store (migrations load Alembic)
    loaded = imported_by_cli(arguments, tmp_path)  # builds nothing: the word table is cached
    assert packages(loaded) & HEAVY_FOR_SAVE == set()


def test_no_import_circles_between_modules() -> None:
    # Every import counts, also those inside functions; only imports made for type
    # annotations (under TYPE_CHECKING) create no dependency at run time.
    import grimp

    graph = grimp.build_graph("store", "tui", "widgets", exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {module: sorted(graph.find_modules_directly_imported_by(module) & graph.modules)
             for module in modules}
    circles = [sorted(component) for component in _strongly_connected(modules, edges)
               if len(component) > 1 or component[0] in edges[component[0]]]
    assert circles == []


def _strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, next_edge = work.pop()
            if next_edge == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = edges[node]
            if next_edge < len(successors):
                work.append((node, next_edge + 1))
                successor = successors[next_edge]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def test_the_help_table_says_what_each_command_says() -> None:
    import importlib

    import click

    from tui.cli import LAZY_COMMANDS

    for name, (module, summary) in LAZY_COMMANDS.items():
        command = getattr(importlib.import_module(module), name)
        assert command.name == name
        for limit in (30, 45, 60, 200):
            assert (click.Command(name, help=summary).get_short_help_str(limit)
                    == command.get_short_help_str(limit)), name
