"""How fast the incident list paints: app start to first rows, and one page-down, on a big store.

    python bench/tui_paint.py --build 10000            # builds a 10,000-incident demo store
    python bench/tui_paint.py --data-dir /path/to/store # an existing store (e.g. 1,000,000)
    add --terminal to also time real `incidex` processes in tmux (imports included), and
    --baseline-ref 26fa020 to time that commit's tree too (--terminal-only: only those)

Figures are medians. Baselines measured here too: the store's own page query (the floor of
a page move that has to fetch) and a bare Textual app painting one Static (the floor of a start).
In the terminal, first frame is the list's screen up (its status line says “Loading
incidents…”), first rows its first incident rows (“row 1 of N”); the bare Textual app started
the same way, and the --baseline-ref tree, run interleaved with this tree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from textual import events  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.widgets import Static  # noqa: E402
from textual.worker import WorkerCancelled  # noqa: E402

from store.settings import Settings  # noqa: E402
from store.store import Store  # noqa: E402
from tui.app import IncidexApp  # noqa: E402
from widgets.incident_table import IncidentTable  # noqa: E402

SIZE = (120, 36)


class PaintWatch:
    """Notes when the incident table draws a data row after the watched key's action ran."""

    def __init__(self) -> None:
        self.armed = False
        self.event: asyncio.Event | None = None
        self.painted_at = 0.0
        render, page, set_rows = (IncidentTable.render_line, IncidentTable.action_page,
                                  IncidentTable.set_rows)

        def render_line(table: IncidentTable, y: int) -> Any:
            strip = render(table, y)
            if y == 1 and table.rows and self.armed and self.event is not None:
                self.painted_at = time.perf_counter()
                self.armed = False
                self.event.set()
            return strip

        def action_page(table: IncidentTable, direction: int) -> None:
            page(table, direction)
            self.armed = True

        def rows_set(table: IncidentTable, *args: Any, **kwargs: Any) -> None:
            set_rows(table, *args, **kwargs)
            self.armed = True

        IncidentTable.render_line = render_line  # type: ignore[method-assign,assignment]
        IncidentTable.action_page = action_page  # type: ignore[method-assign,assignment]
        IncidentTable.set_rows = rows_set  # type: ignore[method-assign,assignment]

    def expect(self, *, armed: bool) -> asyncio.Event:
        """An event set at the next data-row paint (after a page action or new rows, unless
        armed already)."""
        self.armed = armed
        self.event = asyncio.Event()
        return self.event


def make_app(store: Store, settings: Settings, warm: bool) -> IncidexApp:
    return IncidexApp(store, settings, poll_seconds=None, warm_cache=warm)


async def first_paint(store: Store, settings: Settings, watch: PaintWatch, warm: bool) -> float:
    """Seconds from building the app to its first incident row drawn."""
    event = watch.expect(armed=True)
    started = time.perf_counter()
    app = make_app(store, settings, warm)
    async with app.run_test(size=SIZE):
        await asyncio.wait_for(event.wait(), 60)
        return watch.painted_at - started


async def page_moves(store: Store, settings: Settings, watch: PaintWatch, moves: int,
                     warm: bool, paced: bool) -> tuple[list[float], list[float], float]:
    """Milliseconds from each page-down (then page-up) key to its repaint, and of G.

    Keys are posted as the terminal driver posts them. Paced: fetches started by a move land
    before the next key (an analyst reading); otherwise keys follow each paint (key repeat).
    """
    app = make_app(store, settings, warm)
    downs: list[float] = []
    ups: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        event = watch.expect(armed=True)
        await asyncio.wait_for(event.wait(), 60)
        await _page_reads_done(app)
        table = app.screen.query_one(IncidentTable)
        for key, times in (("pagedown", downs), ("pageup", ups)):
            for _ in range(moves):
                times.append(await _timed_key(app, table, watch, key))
                if paced:
                    await _page_reads_done(app)
                    await pilot.pause()
        event = watch.expect(armed=False)
        started = time.perf_counter()
        app.post_message(events.Key("G", "G"))
        await asyncio.wait_for(event.wait(), 60)
        jump = (watch.painted_at - started) * 1000
    return downs, ups, jump


async def _page_reads_done(app: IncidexApp) -> None:
    """Wait for the list's reads (not the cache warming, which runs on as it would)."""
    reads = [worker for worker in app.workers if worker.group in ("list", "page", "count")]
    with contextlib.suppress(WorkerCancelled):
        await app.workers.wait_for_complete(reads)


async def _timed_key(app: IncidexApp, table: IncidentTable, watch: PaintWatch, key: str
                     ) -> float:
    event = watch.expect(armed=False)
    started = time.perf_counter()
    app.post_message(events.Key(key, None))
    await asyncio.wait_for(event.wait(), 10)
    return (watch.painted_at - started) * 1000


class BareApp(App[None]):
    """The floor: Textual starting and painting one line."""

    def compose(self) -> ComposeResult:
        yield Static("hello")


async def bare_start() -> float:
    started = time.perf_counter()
    app = BareApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        return time.perf_counter() - started


def store_baseline(store: Store, runs: int) -> tuple[float, float, float]:
    """Milliseconds of the first page query, of a next-page query, and of the count."""
    first, after = [], []
    for _ in range(runs):
        started = time.perf_counter()
        page = store.incidents_page(limit=100)
        first.append((time.perf_counter() - started) * 1000)
        cursor = page.next_cursor
        for _ in range(10):
            started = time.perf_counter()
            page = store.incidents_page(limit=100, after=cursor)
            after.append((time.perf_counter() - started) * 1000)
            cursor = page.next_cursor
    started = time.perf_counter()
    store.count_incidents()
    count_ms = (time.perf_counter() - started) * 1000
    return statistics.median(first), statistics.median(after), count_ms


# What the terminal shows: the list's status line reads “Loading incidents…” from the first
# frame (before 26fa020 also, until the rows came) and “row 1 of N” once rows are drawn.
FRAME_MARKS = ("Loading incidents", "row 1 of")
ROWS_MARK = "row 1 of"
BARE_APP = """from textual.app import App
from textual.widgets import Static


class Bare(App[None]):
    def compose(self):
        yield Static("hello, bare textual")


Bare().run()
"""


SOCKETS = itertools.count()


class Launch:
    """One program started in a new tmux server, and what on screen marks its first frame and
    its first rows (None: it has no rows, only a frame)."""

    def __init__(self, label: str, command: str, frame_marks: tuple[str, ...],
                 rows_mark: str | None) -> None:
        self.label, self.command = label, command
        self.frame_marks, self.rows_mark = frame_marks, rows_mark

    def time(self) -> tuple[float | None, float | None]:
        """Seconds from launching to the first frame and to the first rows (None: not seen)."""
        socket = f"incidex-bench-{os.getpid()}-{next(SOCKETS)}"  # a new tmux server each time
        frame = rows = None
        started = time.perf_counter()
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "b", "-x",
                        str(SIZE[0]), "-y", str(SIZE[1]), self.command], check=True)
        try:
            while time.perf_counter() - started < 60:
                screen = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "b"],
                                        capture_output=True, text=True).stdout
                now = time.perf_counter() - started
                if frame is None and any(mark in screen for mark in self.frame_marks):
                    frame = now
                if self.rows_mark is not None and self.rows_mark in screen:
                    rows = now
                if frame is not None and (rows is not None or self.rows_mark is None):
                    break
                time.sleep(0.01)
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
        return frame, rows


def baseline_tree(reference: str, root: Path) -> Path:
    """The tree at `reference` (git archive), run with this venv."""
    tree = root / f"tree-{reference}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", reference],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def terminal_launches(data_dir: Path, root: Path, baseline_ref: str | None) -> list[Launch]:
    """The bare Textual app, this tree's `incidex`, and the baseline tree's, as real processes."""
    bare = root / "bare_app.py"
    bare.write_text(BARE_APP)
    launches = [Launch("bare Textual app (baseline)", f"{sys.executable} {bare}",
                       ("hello, bare textual",), None)]
    trees = [("this tree", REPO_ROOT)]
    if baseline_ref:
        trees.append((baseline_ref, baseline_tree(baseline_ref, root)))
    for label, tree in trees:
        launches.append(Launch(f"incidex ({label})",
                               f"cd {tree} && PYTHONPATH={tree} INCIDEX_DATA_DIR={data_dir} "
                               f"{sys.executable} -m tui.cli", FRAME_MARKS, ROWS_MARK))
    return launches


def terminal_report(data_dir: Path, runs: int, baseline_ref: str | None) -> None:
    """Real processes in tmux, interleaved: process start (imports included) to first frame
    and to first rows, medians."""
    if shutil.which("tmux") is None:
        print("real terminal: tmux not found, skipped")
        return
    with tempfile.TemporaryDirectory(prefix="incidex-bench-tree-") as scratch:
        launches = terminal_launches(data_dir, Path(scratch), baseline_ref)
        for launch in launches:
            launch.time()  # bytecode compiled, caches written: not timed
        frames: dict[str, list[float]] = {launch.label: [] for launch in launches}
        rows: dict[str, list[float]] = {launch.label: [] for launch in launches}
        missed: dict[str, int] = {launch.label: 0 for launch in launches}
        for _ in range(runs):
            for launch in launches:
                frame, first_rows = launch.time()
                if frame is None or (launch.rows_mark is not None and first_rows is None):
                    missed[launch.label] += 1
                if frame is not None:
                    frames[launch.label].append(frame)
                if first_rows is not None:
                    rows[launch.label].append(first_rows)
    print(f"real terminal (tmux {SIZE[0]}x{SIZE[1]}, from launch, imports included; {runs} "
          f"starts each, interleaved; load average {os.getloadavg()[0]:.2f}):")
    for launch in launches:
        label = launch.label
        frame = _median_ms(frames[label])
        first = _median_ms(rows[label]) if launch.rows_mark is not None else "–"
        note = f" ({missed[label]} not seen in 60 s)" if missed[label] else ""
        print(f"  {label:<34} first frame {frame:>9}   first rows {first:>9}{note}")


def _median_ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.0f} ms" if seconds else "–"


def build_store(incidents: int, directory: Path) -> None:
    """Save demo records until the store holds at least `incidents` incidents."""
    from store.demo.generator import generate_records
    from store.ingest.records import validate_record

    started = time.perf_counter()
    saved = 0
    with Store.open(Settings(data_dir=directory)) as store:
        while store.count_incidents() < incidents:
            missing = incidents - store.count_incidents()
            batch = [(f"demo {i}", validate_record(record, f"demo {i}")) for i, record in
                     enumerate(generate_records(saved + missing, 0, start=saved), start=saved)]
            store.save_many(batch)
            saved += len(batch)
        count = store.count_incidents()
    print(f"built {count:,} incidents ({saved:,} demo analyses) in "
          f"{time.perf_counter() - started:.1f} s")


def report(data_dir: Path, runs: int, moves: int, warm: bool) -> None:
    settings = Settings(data_dir=data_dir)
    started = time.perf_counter()
    store = Store.open(settings)
    open_ms = (time.perf_counter() - started) * 1000
    incidents = store.count_incidents()
    print(f"store: {data_dir} ({incidents:,} incidents), Store.open {open_ms:.0f} ms, "
          f"warming {'on' if warm else 'off'}")
    first_ms, after_ms, count_ms = store_baseline(store, runs)
    print(f"baseline store: first page {first_ms:.1f} ms, next page {after_ms:.1f} ms, "
          f"count {count_ms:.0f} ms (medians)")
    bare = [asyncio.run(bare_start()) for _ in range(runs)]
    print(f"baseline textual: bare app start to paint {statistics.median(bare) * 1000:.0f} ms")
    watch = PaintWatch()
    paints = [asyncio.run(first_paint(store, settings, watch, warm)) for _ in range(runs)]
    print(f"first rows painted: median {statistics.median(paints) * 1000:.0f} ms, "
          f"max {max(paints) * 1000:.0f} ms over {runs} starts")
    for paced in (True, False):
        downs, ups, jump = asyncio.run(page_moves(store, settings, watch, moves, warm, paced))
        pace = "paced" if paced else "key repeat"
        for name, times in (("page-down", downs), ("page-up", ups)):
            print(f"{name} ({pace}): median {statistics.median(times):.1f} ms, p95 "
                  f"{sorted(times)[int(len(times) * 0.95) - 1]:.1f} ms, max "
                  f"{max(times):.1f} ms over {len(times)} moves ({len(times) * 34:,} rows)")
        print(f"G (jump to the oldest, {pace} run): {jump:.0f} ms")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="an existing store to measure")
    parser.add_argument("--build", type=int, default=10_000,
                        help="without --data-dir: build a demo store of this many incidents")
    parser.add_argument("--runs", type=int, default=5, help="app starts to time")
    parser.add_argument("--moves", type=int, default=40, help="page-downs (and page-ups)")
    parser.add_argument("--warm", action="store_true", help="keep cache warming on")
    parser.add_argument("--terminal", action="store_true",
                        help="also time real processes in tmux (first frame, first rows)")
    parser.add_argument("--terminal-only", action="store_true",
                        help="only the real processes, not the in-process figures")
    parser.add_argument("--baseline-ref", default=None,
                        help="with --terminal: also time the tree at this commit (git archive)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="incidex-bench-")))
            build_store(args.build, data_dir)
        if not args.terminal_only:
            report(data_dir, args.runs, args.moves, args.warm)
        if args.terminal or args.terminal_only:
            terminal_report(data_dir, args.runs, args.baseline_ref)


if __name__ == "__main__":
    main()
