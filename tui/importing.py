"""Import and demo fill for the TUI: the headless save path, with progress reported by callback."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, cast

from store.store import Store
from tui.headless import save_stream


class UserFacingError(Exception):
    """A failure whose message is meant for the analyst as it is."""


@dataclass
class ImportTally:
    """How an import went so far."""

    saved: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


class _ResultSink(io.TextIOBase):
    """Reads the JSON line save_stream prints per record; reports progress on every flush."""

    def __init__(self, on_flush: Callable[[], None]) -> None:
        super().__init__()
        self.tally = ImportTally()
        self._on_flush = on_flush
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._count(json.loads(line))
        return len(text)

    def _count(self, result: dict[str, object]) -> None:
        if result["status"] == "saved":
            self.tally.saved += 1
        elif result["status"] == "duplicate":
            self.tally.duplicates += 1
        else:
            label, error = str(result["record"]), str(result["error"])
            self.tally.errors.append(error if error.startswith(label) else f"{label}: {error}")

    def flush(self) -> None:
        self._on_flush()


ImportProgress = Callable[[int, int, ImportTally], None]


def import_file(store: Store, path: Path, batch_size: int, on_progress: ImportProgress,
                stop: threading.Event | None = None) -> ImportTally:
    """Save every record of a --save file (JSON, array or JSON Lines); bad records are tallied.

    Setting `stop` ends the import after the batch being saved (what was saved stays)."""
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
    def flushed() -> None:
        on_progress(_position(raw), total, sink.tally)
        if stop is not None and stop.is_set():
            raise UserFacingError(f"import of {path.name} stopped after {sink.tally.saved:,} "
                                  "saved records")

    with raw:
        sink = _ResultSink(flushed)
        save_stream(store, raw, cast(TextIO, sink), io.StringIO(), batch_size=batch_size)
    on_progress(total, total, sink.tally)
    return sink.tally


def _position(stream: io.BufferedReader) -> int:
    try:
        return stream.tell()
    except OSError:
        return 0


def fill_demo(store: Store, count: int, seed: int, stop: threading.Event,
              on_progress: Callable[[int, int], None], batch_size: int = 100) -> int:
    """The app's demo fill: small batches, so progress moves and `stop` answers quickly."""
    from store.demo_fill import fill_store

    return fill_store(store, count, seed, batch_size=batch_size, stop=stop,
                      on_progress=on_progress)


def write_export(path: Path, text: str) -> Path:
    """Write text to path atomically (temporary file, then rename); returns the path."""
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        raise UserFacingError(f"cannot write {path}: {error.strerror or error}") from None
    return path
