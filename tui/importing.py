"""Import and demo fill for the TUI: the headless save path, with progress reported by callback."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: the save path (validation, SQLAlchemy) loads when an import or an export
    # runs, not with the incident list.
    from store import SaveEvent, Store


class UserFacingError(Exception):
    """A failure whose message is meant for the analyst as it is."""


@dataclass
class ImportTally:
    """How an import went so far."""

    saved: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


ImportProgress = Callable[[int, int, ImportTally], None]


def import_file(store: Store, path: Path, batch_size: int, on_progress: ImportProgress,
                stop: threading.Event | None = None) -> ImportTally:
    """Save every record of a --save file (JSON, array or JSON Lines); bad records are tallied.

    Setting `stop` ends the import after the batch being saved (what was saved stays)."""
    from store import iter_save_batches

    path = path.expanduser()
    try:
        total = path.stat().st_size
        raw = path.open("rb")
    except FileNotFoundError:
        raise UserFacingError(f"cannot import {path}: no such file") from None
    except IsADirectoryError:
        raise UserFacingError(f"cannot import {path}: is a directory") from None
    except OSError as error:
        raise UserFacingError(f"cannot import {path}: {error.strerror}") from None
    tally = ImportTally()
    with raw:
        for batch in iter_save_batches(store, raw, batch_size=batch_size):
            for event in batch:
                _count(tally, event)
            on_progress(_position(raw), total, tally)
            if stop is not None and stop.is_set():
                raise UserFacingError(f"import of {path.name} stopped after {tally.saved:,} "
                                      "saved records")
    on_progress(total, total, tally)
    return tally


def _count(tally: ImportTally, event: SaveEvent) -> None:
    if event.result.status == "saved":
        tally.saved += 1
    elif event.result.status == "duplicate":
        tally.duplicates += 1
    else:
        error = str(event.result.error)
        tally.errors.append(error if error.startswith(event.label) else f"{event.label}: {error}")


def _position(stream: io.BufferedReader) -> int:
    try:
        return stream.tell()
    except OSError:
        return 0


def fill_demo(store: Store, count: int, seed: int, stop: threading.Event,
              on_progress: Callable[[int, int], None], batch_size: int = 100) -> int:
    """The app's demo fill: small batches, so progress moves and `stop` answers quickly."""
    from store import fill_demo_store as fill_store

    return fill_store(store, count, seed, batch_size=batch_size, stop=stop,
                      on_progress=on_progress)


def write_export(path: Path, text: str) -> Path:
    """Write text to path atomically and owner-only (an export holds incident data)."""
    from store import write_private_file

    path = path.expanduser()
    try:
        write_private_file(path, text.encode("utf-8"))
    except OSError as error:
        raise UserFacingError(f"cannot write {path}: {error.strerror or error}") from None
    return path
