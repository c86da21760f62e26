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
