"""One save stream for every caller: records in, one event per record out, in input order.

The CLI printer (`incidex --save`) and the TUI's import both consume iter_save(); the input is
chunked here and only here, each chunk saved in one call to the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from store.errors import RecordError
from store.ingest.reader import RawRecord, chunked, read_records
from store.ingest.records import validate_record
from store.schemas import AnalysisIn, SaveResult

if TYPE_CHECKING:
    from store.store import Store


@dataclass(frozen=True, slots=True)
class SaveEvent:
    """What happened to one input record: saved, duplicate or error, under its label."""

    label: str
    result: SaveResult

    @property
    def ok(self) -> bool:
        """Whether the record is in the store now (saved, or already there)."""
        return self.result.status != "error"

    def as_json(self) -> dict[str, Any]:
        """The JSON line `incidex --save` prints for this record."""
        return {
            "record": self.label,
            "incident_id": self.result.incident_id,
            "analysis_id": self.result.analysis_id,
            "status": self.result.status,
            "error": self.result.error,
        }


def iter_save(store: Store, stream: IO[bytes], *, batch_size: int) -> Iterator[SaveEvent]:
    """Read JSON, a JSON array or JSON Lines from stream and save it batch by batch.

    Events come out batch by batch, after each batch is committed; a caller that stops
    iterating leaves the batches already yielded saved and nothing else.
    """
    for batch in iter_save_batches(store, stream, batch_size=batch_size):
        yield from batch


def iter_save_batches(store: Store, stream: IO[bytes], *,
                      batch_size: int) -> Iterator[list[SaveEvent]]:
    """As iter_save(), one list of events per committed batch (for progress and stopping)."""
    yield from save_raw_records(store, read_records(stream), batch_size=batch_size)


def save_raw_records(store: Store, records: Iterable[RawRecord], *,
                     batch_size: int) -> Iterator[list[SaveEvent]]:
    """Validate and save parsed records in chunks of batch_size, one event per record."""
    for chunk in chunked(records, batch_size):
        yield _save_chunk(store, chunk)


def _save_chunk(store: Store, chunk: list[RawRecord]) -> list[SaveEvent]:
    refused: dict[int, SaveEvent] = {}
    valid: list[tuple[str, AnalysisIn]] = []
    for position, raw in enumerate(chunk):
        try:
            if raw.error is not None:
                raise raw.error
            valid.append((raw.label, validate_record(raw.value, raw.label)))
        except RecordError as error:
            refused[position] = SaveEvent(raw.label,
                                          SaveResult.failed(_incident_id(raw.value), str(error)))
    saved = iter(store.save_batch(valid))
    return [refused[position] if position in refused else SaveEvent(raw.label, next(saved))
            for position, raw in enumerate(chunk)]


def _incident_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("incident"), dict):
        identifier = value["incident"].get("incident_id")
        return identifier if isinstance(identifier, str) else None
    return None
