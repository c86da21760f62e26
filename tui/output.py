"""What the command line writes: human lines with control characters escaped, JSON escaped as JSON.

Stored ids, titles, IOCs and error messages reach a terminal here; an ESC in them is written
as the text `\\x1b`, never obeyed (no retitled window, cleared screen or hidden link).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

import click

from widgets.format import json_text, printable


def say(text: str, *, err: bool = False) -> None:
    """Write one human line (or several) to stdout, or stderr with err."""
    click.echo(printable(text), err=err)


def say_json(value: Any, *, default: Callable[[Any], Any] | None = None) -> None:
    """Write value as one JSON line to stdout."""
    click.echo(json_text(value, default=default))


def write_line(stream: TextIO, text: str) -> None:
    """Write one human line to stream."""
    stream.write(printable(text) + "\n")


def write_json_line(stream: TextIO, value: Any) -> None:
    """Write value as one JSON line to stream."""
    stream.write(json_text(value) + "\n")
