"""How fast the incident list paints: app start to first rows, and one page-down, on a big store.

    python bench/tui_paint.py --build 10000            # builds a 10,000-incident demo store
    python bench/tui_paint.py --data-dir /path/to/store # an existing store (e.g. 1,000,000)
    add --terminal to also time a real `incidex` process in tmux (imports included)

Figures are medians. Baselines measured here too: the store's own page query (the floor of
a page move that has to fetch) and a bare Textual app painting one Static (the floor of a start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def terminal_first_paint(data_dir: Path, runs: int) -> list[float] | None:
    """Seconds from launching `python -m tui.cli` in tmux to the status line showing rows."""
    if shutil.which("tmux") is None:
        return None
    results = []
    for run in range(runs):
        socket = f"incidex-bench-{os.getpid()}-{run}"
        command = (f"cd {Path(__file__).resolve().parents[1]} && INCIDEX_DATA_DIR={data_dir} "
                   f"{sys.executable} -m tui.cli")
        started = time.perf_counter()
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "b", "-x", "120",
                        "-y", "36", command], check=True)
        while True:
            screen = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "b"],
                                    capture_output=True, text=True).stdout
            if "row 1 of" in screen:
                results.append(time.perf_counter() - started)
                break
            if time.perf_counter() - started > 60:
                break
            time.sleep(0.01)
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    return results


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


def report(data_dir: Path, runs: int, moves: int, warm: bool, terminal: bool) -> None:
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
    if terminal:
        seconds = terminal_first_paint(data_dir, runs)
        if seconds:
            print(f"real terminal (tmux, process start incl. imports) to first rows: median "
                  f"{statistics.median(seconds) * 1000:.0f} ms over {len(seconds)} starts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="an existing store to measure")
    parser.add_argument("--build", type=int, default=10_000,
                        help="without --data-dir: build a demo store of this many incidents")
    parser.add_argument("--runs", type=int, default=5, help="app starts to time")
    parser.add_argument("--moves", type=int, default=40, help="page-downs (and page-ups)")
    parser.add_argument("--warm", action="store_true", help="keep cache warming on")
    parser.add_argument("--terminal", action="store_true", help="also time a real process")
    args = parser.parse_args()
    if args.data_dir is not None:
        report(args.data_dir, args.runs, args.moves, args.warm, args.terminal)
        return
    with tempfile.TemporaryDirectory(prefix="incidex-bench-") as scratch:
        build_store(args.build, Path(scratch))
        report(Path(scratch), args.runs, args.moves, args.warm, args.terminal)


if __name__ == "__main__":
    main()
