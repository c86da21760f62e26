"""Reading `incidex --save` input: one JSON document, a JSON array, or JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from store.errors import RecordError

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One parsed record, or the error that stopped it being parsed, with its label."""

    label: str
    value: Any = None
    error: RecordError | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def read_records(stream: IO[bytes]) -> Iterator[RawRecord]:
    """Yield every record of the input in order; bad ones carry an error naming their line."""
    first_line = _first_content_line(stream)
    if first_line is None:
        return
    line_number, line = first_line
    stripped = line.lstrip(b"\xef\xbb\xbf").strip()
    if not stripped.startswith(b"[") and _parses(stripped):
        yield from _json_lines(stream, line_number, line)
        return
    rest = stream.read()
    whole = line + rest
    try:
        document = _loads(_decode(whole.lstrip(b"\xef\xbb\xbf"), "input"))
    except RecordError as error:
        yield RawRecord("input", error=error)
        return
    except ValueError as error:
        if stripped.startswith(b"["):
            yield RawRecord("input", error=RecordError("input", "", _json_problem(error)))
            return
        # Not one document: read it as JSON Lines so each bad line is named.
        yield from _json_lines(iter(whole.splitlines(keepends=True)), line_number - 1, None)
        return
    if isinstance(document, list):
        for index, value in enumerate(document, start=1):
            yield RawRecord(f"record {index}", value)
    else:
        yield RawRecord("record 1", document)


def _first_content_line(stream: IO[bytes]) -> tuple[int, bytes] | None:
    for number, line in enumerate(stream, start=1):
        if line.strip(b" \t\r\n\xef\xbb\xbf"):
            return number, line
    return None


def _parses(line: bytes) -> bool:
    try:
        _loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _json_lines(lines: Any, first_number: int, first_line: bytes | None) -> Iterator[RawRecord]:
    number = first_number
    if first_line is not None:
        yield _parse_line(number, first_line.lstrip(b"\xef\xbb\xbf"))
    for line in lines:
        number += 1
        if line.strip():
            yield _parse_line(number, line)


def _parse_line(number: int, line: bytes) -> RawRecord:
    label = f"line {number}"
    try:
        return RawRecord(label, _loads(_decode(line, label)))
    except RecordError as error:
        return RawRecord(label, error=error)
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
