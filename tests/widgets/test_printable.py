"""printable, without_controls, json_text: nothing a terminal obeys gets through, data kept."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from widgets.format import json_text, printable, without_controls
from widgets.stored_text import stored

# What a terminal may act on: C0 (tab and newline are laid out), DEL, C1, bidi overrides.
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
hostile_text = st.text(st.sampled_from(
    ["\x1b", "\x07", "\x9b", "\x7f", "\r", "\n", "\t", "\u202e", "\u2066", "[", "/", "]", "a",
     "é", "\x00", "\x85", "\\"]) | st.characters())


@given(hostile_text)
def test_printable_leaves_nothing_a_terminal_obeys(text: str) -> None:
    shown = printable(text)
    assert OBEYED.search(shown) is None
    one_line = printable(text, one_line=True)
    assert OBEYED.search(one_line) is None and "\n" not in one_line and "\t" not in one_line


@given(hostile_text)
def test_printable_changes_only_control_characters(text: str) -> None:
    if OBEYED.search(text) is None and "\r\n" not in text:
        assert printable(text) == text


def test_printable_shows_each_control_as_an_escape() -> None:
    assert printable("a\x1b]0;t\x07b") == "a\\x1b]0;t\\x07b"
    assert printable("\x9b2J\u202egpj") == "\\x9b2J\\u202egpj"
    assert printable("a\r\nb\tc", one_line=True) == "a b c"
    assert printable("a\rb", one_line=True) == "a\\x0db"
    assert printable("a\r\nb") == "a\nb"


@given(hostile_text)
def test_without_controls_drops_them(text: str) -> None:
    assert OBEYED.search(without_controls(text)) is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | hostile_text,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(hostile_text, inner, max_size=4), max_leaves=12))
def test_json_text_keeps_the_data_and_escapes_controls(value: Any) -> None:
    for indent in (None, 2):
        text = json_text(value, indent=indent)
        assert json.loads(text) == value
        assert OBEYED.search(text) is None


def test_stored_is_never_markup() -> None:
    text = stored("[bold red]x[/] [@click=app.quit]y[/]\x1b[2J", "bold")
    assert text.plain == "[bold red]x[/] [@click=app.quit]y[/]\\x1b[2J"
    assert text.spans == [] and str(text.style) == "bold"
