"""Reading `incidex --save` input: one JSON document, a JSON array, or JSON Lines.

Invariants: memory stays bounded by max_document_bytes whatever the input (an endless line is
skipped, never held); no input raises: every problem, however deep or large, becomes a
RawRecord carrying a RecordError that names the record and, where known, the field.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol, TypeVar

from store.errors import RecordError

T = TypeVar("T")

DEFAULT_MAX_DOCUMENT_BYTES = 100_000_000
# Deeper than this, the parser's recursion gives up; orjson stores at most 254 levels anyway.
MAX_JSON_DEPTH = 250
_READ_CHUNK = 1 << 16
_BOM = b"\xef\xbb\xbf"


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to `size` items, without reading ahead further."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def with_next(items: Iterable[T]) -> Iterator[tuple[T, T | None]]:
    """Each item with the one after it (None after the last), reading one item ahead."""
    iterator = iter(items)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following
        current = following


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One parsed record, or the error that stopped it being parsed, with its label."""

    label: str
    value: Any = None
    error: RecordError | None = None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _DeepJSON(ValueError):
    """A JSON value nested deeper than the parser can follow."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:24]} is out of range (larger than 1.8e308)")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _loads(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise _DeepJSON(text) from None


def read_records(stream: IO[bytes], max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
                 ) -> Iterator[RawRecord]:
    """Yield every record of the input in order; bad ones carry an error naming their line."""
    lines = _BoundedLines(stream, max_document_bytes)
    first = lines.next_content_line()
    if first is None:
        return
    line_number, line = first
    stripped = line.lstrip(_BOM).strip()
    looks_like_document = stripped.startswith(b"[") or stripped == b"{"
    if line.oversized:
        if looks_like_document:
            yield _too_big("input", max_document_bytes)
            return
        yield _too_big(f"line {line_number}", max_document_bytes)
        yield from _json_lines(lines, line_number)
        return
    if not stripped.startswith(b"[") and _parses(stripped):
        yield _parse_line(line_number, line.lstrip(_BOM))
        yield from _json_lines(lines, line_number)
        return
    whole = lines.read_document(bytes(line))
    if whole is None:
        if looks_like_document:
            yield _too_big("input", max_document_bytes)
            return
        # Too big for one document: it can only be JSON Lines, read line by line as they come.
        yield _parse_line(line_number, line.lstrip(_BOM))
        yield from _json_lines(lines, line_number)
        return
    yield from _document(whole, line_number)


def _document(whole: bytes, line_number: int) -> Iterator[RawRecord]:
    try:
        text = _decode(whole.lstrip(_BOM), "input")
        if text.lstrip().startswith("["):
            yield from _array(text)
            return
        document = _loads(text)
    except RecordError as error:
        yield RawRecord("input", error=error)
        return
    except ValueError:
        # Not one document (or too deep a one): read it as JSON Lines so each bad line is named.
        yield from _json_lines(_BoundedLines(_Bytes(whole), len(whole) + 1), line_number - 1)
        return
    yield RawRecord("record 1", document)


def _array(text: str) -> Iterator[RawRecord]:
    """The elements of a JSON array, each parsed on its own so that one deep element fails
    alone; a syntax error anywhere refuses the whole input, as before any record is saved."""
    parsed: list[RawRecord] = []
    position = text.index("[") + 1
    index = 0
    try:
        while True:
            position = _skip_blanks(text, position)
            if text.startswith("]", position):
                if text[position + 1 :].strip():
                    raise ValueError("extra data after the array")
                break
            if index and not text.startswith(",", position):
                raise ValueError(f"expected ',' or ']' at character {position}")
            if index:
                position = _skip_blanks(text, position + 1)
            index += 1
            label = f"record {index}"
            try:
                value, position = _DECODER.raw_decode(text, position)
            except RecursionError:
                end = _value_end(text, position)
                parsed.append(RawRecord(label, error=_deep_error(label, text[position:end])))
                position = end
                continue
            parsed.append(RawRecord(label, value))
    except ValueError as error:
        yield RawRecord("input", error=RecordError("input", "", _json_problem(error)))
        return
    yield from parsed


def _skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    if position >= len(text):
        raise ValueError("the array is not closed")
    return position


_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}:]')


def _value_end(text: str, start: int) -> int:
    """Where the JSON value starting at `start` ends, found without recursion."""
    depth = 0
    for match in _TOKEN.finditer(text, start):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
            if depth == 0:
                return match.end()
    raise ValueError("a value is not closed")


def _deep_path(text: str) -> str:
    """The field under which a JSON text nests deeper than MAX_JSON_DEPTH, as `a.b[]`."""
    path: list[str] = []
    key: str | None = None
    last_string: str | None = None
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == ":":
            key = last_string
        elif token in "[{":
            if len(path) >= MAX_JSON_DEPTH:
                break
            path.append(key or "")
            key = None
        elif token in "]}":
            if path:
                path.pop()
        else:
            last_string = token[1:-1][:40]
    names = [name for name in path[1:4] if name]
    return ".".join(names) or "record"


def _deep_error(label: str, text: str) -> RecordError:
    return RecordError(label, _deep_path(text), f"nested deeper than {MAX_JSON_DEPTH} levels")


def _too_big(label: str, limit: int) -> RawRecord:
    kind = "document" if label == "input" else "line"
    hint = "; send JSON Lines (one record a line)" if label == "input" else ""
    return RawRecord(label, error=RecordError(
        label, "", f"a JSON {kind} over the limit of {limit:,} bytes "
        f"(INCIDEX_MAX_DOCUMENT_BYTES){hint}"))


def _parses(line: bytes) -> bool:
    try:
        _loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _json_lines(lines: _BoundedLines, number: int) -> Iterator[RawRecord]:
    for line in lines:
        number += 1
        if line.oversized:
            yield _too_big(f"line {number}", lines.limit)
        elif line.strip():
            yield _parse_line(number, line)


def _parse_line(number: int, line: bytes) -> RawRecord:
    label = f"line {number}"
    try:
        return RawRecord(label, _loads(_decode(line, label)))
    except RecordError as error:
        return RawRecord(label, error=error)
    except _DeepJSON as error:
        return RawRecord(label, error=_deep_error(label, str(error)))
    except ValueError as error:
        return RawRecord(label, error=RecordError(label, "", _json_problem(error)))


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordError(label, "", f"invalid UTF-8 at byte {error.start}") from None


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON: {error.msg} at column {error.colno}" + (
            f" of line {error.lineno}" if error.lineno > 1 else "")
    return f"invalid JSON: {error}"


class _Line(bytes):
    """A line of input; `oversized` when it passed the limit (its bytes then are a prefix)."""

    oversized: bool = False


class _Bytes:
    """Bytes already in memory, read as a stream."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        end = len(self._data) if size < 0 else self._position + size
        data = self._data[self._position : end]
        self._position += len(data)
        return data


class _BoundedLines:
    """Lines of a byte stream, none held longer than `limit` bytes (the rest is skipped).

    It buffers by itself, with one read() of what is available at a time, so that a raw
    (unbuffered) stream works: a thread blocked reading it holds no lock that closing the
    stream or ending the process would wait for.
    """

    def __init__(self, stream: _Readable | IO[bytes], limit: int) -> None:
        self._stream = stream
        self._read = getattr(stream, "read1", stream.read)
        self._buffer = bytearray()
        self._start = 0  # where the unread part of the buffer begins
        self._at_end = False
        self.limit = limit

    def __iter__(self) -> Iterator[_Line]:
        while True:
            line = self.next_line()
            if line is None:
                return
            yield line

    def _fill(self) -> bool:
        """Read what the stream has next into the buffer; False at the end of the input."""
        if self._at_end:
            return False
        data = self._read(_READ_CHUNK)
        if not data:
            self._at_end = True
            return False
        if self._start > len(self._buffer) // 2:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data
        return True

    def _readline(self, size: int) -> bytes:
        scanned = 0  # bytes after _start already searched for a newline
        while True:
            newline = self._buffer.find(b"\n", self._start + scanned, self._start + size)
            if newline >= 0:
                end = newline + 1
                break
            available = len(self._buffer) - self._start
            if available >= size or not self._fill():
                end = self._start + min(size, available)
                break
            scanned = available
        line = bytes(self._buffer[self._start : end])
        self._start = end
        return line

    def next_line(self) -> _Line | None:
        """The next line, or None at the end of the input."""
        data = self._readline(self.limit + 1)
        if not data:
            return None
        line = _Line(data)
        if len(data) > self.limit and not data.endswith(b"\n"):
            line = _Line(data[:64])
            line.oversized = True
            while (rest := self._readline(_READ_CHUNK)) and not rest.endswith(b"\n"):
                pass
        return line

    def next_content_line(self) -> tuple[int, _Line] | None:
        """The number and text of the first line that is not blank."""
        number = 0
        while (line := self.next_line()) is not None:
            number += 1
            if line.oversized or line.strip(b" \t\r\n\xef\xbb\xbf"):
                return number, line
        return None

    def read_document(self, start: bytes) -> bytes | None:
        """`start` and the rest of the input when it fits the limit; None when it does not
        (having read no more than the limit, which the following lines then come from)."""
        room = self.limit - len(start)
        size = _remaining_size(self._stream)
        if size is not None and size + len(self._buffer) - self._start > room:
            return None
        while len(self._buffer) - self._start <= room and self._fill():
            pass
        if len(self._buffer) - self._start > room:
            return None
        document = start + bytes(self._buffer[self._start :])
        self._buffer, self._start = bytearray(), 0
        return document


def _remaining_size(stream: _Readable | IO[bytes]) -> int | None:
    """How many bytes a regular file has left to read; None for pipes and memory streams."""
    try:
        status = os.fstat(stream.fileno())  # type: ignore[union-attr]
        if not stat.S_ISREG(status.st_mode):
            return None
        return status.st_size - stream.tell()  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return None
