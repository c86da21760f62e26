"""The headless verbs behind `incidex --save` and `incidex demo`: no textual imported here."""

from __future__ import annotations

import json
from typing import IO, Any, TextIO

from store.errors import RecordError
from store.ingest import RawRecord, chunked, read_records
from store.records import validate_record
from store.schemas import AnalysisIn, SaveResult
from store.store import Store


def save_stream(
    store: Store, stream: IO[bytes], out: TextIO, err: TextIO, *, batch_size: int
) -> tuple[int, int]:
    """Save every record of the stream; print a JSON line per record. Returns (ok, failed)."""
    ok = failed = 0
    for chunk in chunked(read_records(stream), batch_size):
        for label, result in _save_chunk(store, chunk):
            out.write(json.dumps(_result_line(label, result), ensure_ascii=False) + "\n")
            if result.status == "error":
                failed += 1
                err.write(f"incidex: {result.error}\n")
            else:
                ok += 1
        out.flush()
        err.flush()
    return ok, failed


def _save_chunk(store: Store, chunk: list[RawRecord]) -> list[tuple[str, SaveResult]]:
    labelled: list[tuple[str, SaveResult | None]] = []
    valid: list[tuple[str, AnalysisIn]] = []
    for raw in chunk:
        try:
            if raw.error is not None:
                raise raw.error
            valid.append((raw.label, validate_record(raw.value, raw.label)))
            labelled.append((raw.label, None))
        except RecordError as error:
            labelled.append((raw.label, SaveResult(_incident_id(raw.value), None, "error",
                                                   str(error))))
    saved = iter(store.save_many(valid))
    return [(label, result if result is not None else next(saved)) for label, result in labelled]


def _incident_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("incident"), dict):
        identifier = value["incident"].get("incident_id")
        return identifier if isinstance(identifier, str) else None
    return None


def _result_line(label: str, result: SaveResult) -> dict[str, Any]:
    return {
        "record": label,
        "incident_id": result.incident_id,
        "analysis_id": result.analysis_id,
        "status": result.status,
        "error": result.error,
    }


def fill_demo(store: Store, count: int, seed: int, *, offset: int = 0,
              show_progress: bool = True) -> int:
    """store.demo_fill.fill_store with a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from store.demo_fill import fill_store

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not show_progress)
    with progress:
        task = progress.add_task("demo records", total=count)
        return fill_store(store, count, seed, offset=offset,
                          on_progress=lambda done, _total: progress.update(task, completed=done))
