"""Search positions in the JSON text: every reported match is the query, whatever the text."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from widgets.json_view import text_positions


@given(st.text(max_size=60), st.text(min_size=1, max_size=4))
def test_every_position_holds_the_query_and_none_is_missed(text: str, query: str) -> None:
    positions = text_positions(text, query)
    lines = text.split("\n")
    for line, column in positions:
        assert re.fullmatch(re.escape(query), lines[line][column:column + len(query)],
                            re.IGNORECASE)
    expected = sum(len(re.findall(re.escape(query), line, re.IGNORECASE)) for line in lines)
    assert len(positions) == expected


def test_a_capital_dotted_i_before_the_match_does_not_shift_its_column() -> None:
    # "İ".lower() is two characters: searching a lower-cased copy put the column one too far.
    assert text_positions('"İa"', "a") == [(0, 2)]
