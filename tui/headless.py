"""The headless verbs behind `incidex --save` and `incidex demo`: no textual imported here."""

from __future__ import annotations

import threading
from typing import IO, TextIO

from store import Store, iter_save
from tui.output import write_json_line, write_line


def save_stream(
    store: Store, stream: IO[bytes], out: TextIO, err: TextIO, *, batch_size: int,
    stop: threading.Event | None = None, skip: int = 0,
) -> tuple[int, int]:
    """Save every record of the stream; print a JSON line per record. Returns (ok, failed).

    Setting `stop` saves the records read completely so far, then returns. The first `skip`
    records are saved but neither printed nor counted (a save server acknowledged them).
    """
    ok = failed = 0
    for position, event in enumerate(iter_save(store, stream, batch_size=batch_size,
                                               stop=stop)):
        if position < skip:
            continue
        write_json_line(out, event.as_json())
        if event.ok:
            ok += 1
        else:
            failed += 1
            write_line(err, f"incidex: {event.result.error}")
        # Each batch's events come together: flushing per event costs nothing noticeable.
        out.flush()
        err.flush()
    return ok, failed


def fill_demo(store: Store, count: int, seed: int, *, offset: int = 0,
              show_progress: bool = True) -> int:
    """store.demo_fill.fill_store with a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from store import fill_demo_store as fill_store

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not show_progress)
    with progress:
        task = progress.add_task("demo records", total=count)
        return fill_store(store, count, seed, offset=offset,
                          on_progress=lambda done, _total: progress.update(task, completed=done))
