"""One save stream for every caller: records in, one event per record out, in input order.

The CLI printer (`incidex --save`) and the TUI's import both consume iter_save(); the input is
chunked here and only here, each chunk saved in one call to the store. A chunk is saved when it
is full, when the input pauses (so a piped producer sees its results at once), or when `stop`
is set (then every record read completely so far is saved, and the stream ends).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from store.errors import RecordError
from store.ingest.reader import RawRecord, read_records, with_next
from store.ingest.records import validate_record
from store.schemas import AnalysisIn, SaveResult

if TYPE_CHECKING:
    from store.store import Store

# A chunk is saved when no record arrived for this long...
PAUSE_SECONDS = 0.2
# ...or when its first record has waited this long (a steady trickle still shows progress).
MAX_WAIT_SECONDS = 1.0
# How often a wait for input looks at `stop`.
_POLL_SECONDS = 0.1
_QUEUE_RECORDS = 64


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


def iter_save(store: Store, stream: IO[bytes], *, batch_size: int,
              stop: threading.Event | None = None) -> Iterator[SaveEvent]:
    """Read JSON, a JSON array or JSON Lines from stream and save it batch by batch.

    Events come out batch by batch, after each batch is committed; a caller that stops
    iterating leaves the batches already yielded saved and nothing else.
    """
    for batch in iter_save_batches(store, stream, batch_size=batch_size, stop=stop):
        yield from batch


def iter_save_batches(store: Store, stream: IO[bytes], *, batch_size: int,
                      stop: threading.Event | None = None) -> Iterator[list[SaveEvent]]:
    """As iter_save(), one list of events per committed batch (for progress and stopping)."""
    records = read_records(stream, store.limits.max_document_bytes)
    # A file or memory never pauses: reading it in line costs less than a reader thread.
    pause_seconds = PAUSE_SECONDS if _may_pause(stream) else None
    yield from save_raw_records(store, records, batch_size=batch_size, stop=stop,
                                pause_seconds=pause_seconds)


def save_raw_records(store: Store, records: Iterable[RawRecord], *, batch_size: int,
                     stop: threading.Event | None = None,
                     pause_seconds: float | None = PAUSE_SECONDS,
                     max_wait_seconds: float = MAX_WAIT_SECONDS) -> Iterator[list[SaveEvent]]:
    """Validate and save parsed records in chunks of up to batch_size, one event per record.

    With pause_seconds, records are read by a thread and a chunk is also saved when the
    input pauses that long; with None, they are read in line (input that never pauses).
    """
    if pause_seconds is not None:
        for chunk in _chunks(records, batch_size, pause_seconds, max_wait_seconds, stop):
            yield _save_chunk(store, _validated(store, chunk))
        return
    # Input that never pauses is read a chunk ahead: the next chunk's vectors are begun in a
    # helper process while this one is written (input that may pause is never waited for).
    chunks = (_validated(store, chunk) for chunk in _chunks_in_line(records, batch_size, stop))
    for current, following in with_next(chunks):
        yield _save_chunk(store, current, following)


def _may_pause(stream: IO[bytes]) -> bool:
    """Whether reading the stream can wait on a producer (a pipe, socket or terminal)."""
    import os
    import stat

    try:
        return not stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False  # a memory stream


def _chunks_in_line(records: Iterable[RawRecord], size: int, stop: threading.Event | None
                    ) -> Iterator[list[RawRecord]]:
    chunk: list[RawRecord] = []
    for record in records:
        chunk.append(record)
        stopping = stop is not None and stop.is_set()
        if len(chunk) >= size or stopping:
            yield chunk
            chunk = []
        if stopping:
            return
    if chunk:
        yield chunk


class _End:
    """The reader thread is done; `error` is what stopped it, if anything did."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _chunks(records: Iterable[RawRecord], size: int, pause_seconds: float,
            max_wait_seconds: float, stop: threading.Event | None
            ) -> Iterator[list[RawRecord]]:
    """Chunks of records read by a thread, so that waiting for input never holds back a chunk."""
    # A short queue: enough to keep the saver busy, while memory stays about one chunk.
    handoff: queue.Queue[RawRecord | _End] = queue.Queue(maxsize=min(size, _QUEUE_RECORDS))
    closed = threading.Event()
    reader = threading.Thread(target=_produce, args=(records, handoff, closed), daemon=True,
                              name="incidex-save-reader")
    reader.start()
    try:
        yield from _collect(handoff, size, pause_seconds, max_wait_seconds, stop)
    finally:
        closed.set()


def _produce(records: Iterable[RawRecord], handoff: queue.Queue[RawRecord | _End],
             closed: threading.Event) -> None:
    end = _End()
    try:
        for record in records:
            if not _put(handoff, record, closed):
                return
    except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
        end = _End(error)
    _put(handoff, end, closed)


def _put(handoff: queue.Queue[RawRecord | _End], item: RawRecord | _End,
         closed: threading.Event) -> bool:
    while not closed.is_set():
        try:
            handoff.put(item, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def _collect(handoff: queue.Queue[RawRecord | _End], size: int, pause_seconds: float,
             max_wait_seconds: float, stop: threading.Event | None
             ) -> Iterator[list[RawRecord]]:
    chunk: list[RawRecord] = []
    first_at = last_at = 0.0
    while True:
        if stop is not None and stop.is_set():
            yield from _drain(handoff, chunk, size)
            return
        wait = _POLL_SECONDS
        if chunk:
            due = min(last_at + pause_seconds, first_at + max_wait_seconds)
            now = time.monotonic()
            if now >= due:  # the input paused, or the first record waited long enough
                yield chunk
                chunk = []
                continue
            wait = min(wait, due - now)
        try:
            item = handoff.get(timeout=wait)
        except queue.Empty:
            continue
        if isinstance(item, _End):
            if chunk:
                yield chunk
            if item.error is not None:
                raise item.error
            return
        last_at = time.monotonic()
        if not chunk:
            first_at = last_at
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []


def _drain(handoff: queue.Queue[RawRecord | _End], chunk: list[RawRecord], size: int
           ) -> Iterator[list[RawRecord]]:
    """Every record already read, in chunks, without waiting for more input."""
    while True:
        try:
            item = handoff.get_nowait()
        except queue.Empty:
            break
        if isinstance(item, _End):
            break
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Validated:
    """A chunk of read records: those valid, and an event for each refused one by position."""

    def __init__(self, chunk: list[RawRecord]) -> None:
        self.chunk = chunk
        self.refused: dict[int, SaveEvent] = {}
        self.valid: list[tuple[str, AnalysisIn]] = []


def _validated(store: Store, chunk: list[RawRecord]) -> _Validated:
    checked = _Validated(chunk)
    default_model = store.settings.chat_model
    for position, raw in enumerate(chunk):
        try:
            if raw.error is not None:
                raise raw.error
            checked.valid.append((raw.label, validate_record(raw.value, raw.label,
                                                             default_model)))
        except RecordError as error:
            checked.refused[position] = SaveEvent(
                raw.label, SaveResult.failed(_incident_id(raw.value), str(error)))
    return checked


def _save_chunk(store: Store, checked: _Validated, following: _Validated | None = None
                ) -> list[SaveEvent]:
    saved = iter(store.save_batch(
        checked.valid, following=[record for _label, record in following.valid]
        if following is not None else ()))
    return [checked.refused[position] if position in checked.refused
            else SaveEvent(raw.label, next(saved))
            for position, raw in enumerate(checked.chunk)]


def _incident_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("incident"), dict):
        identifier = value["incident"].get("incident_id")
        return identifier if isinstance(identifier, str) else None
    return None
