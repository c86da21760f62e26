"""File names built from ids (exports, snapshots) are always safe and distinct."""

from __future__ import annotations

import pytest

from store.fileio import safe_name

HOSTILE_IDS = ["../../etc/passwd", "a/b/c", "a\\b\\c", "nul\x00byte", "bell\x07\x1b[31m",
               "x" * 300, "..", ".", "", "   ", "/absolute", "C:\\Windows\\system32", "ñandú-Ω",
               ".hidden", "-rf"]


@pytest.mark.parametrize("incident_id", HOSTILE_IDS)
def test_hostile_ids_give_plain_names(incident_id: str) -> None:
    name = safe_name(incident_id)
    assert name and len(name) <= 100 and not name.startswith((".", "-"))
    assert all(ch.isalnum() or ch in "._-~" for ch in name) and name.isascii()


def test_distinct_ids_give_distinct_names() -> None:
    names = {safe_name(identifier) for identifier in HOSTILE_IDS}
    assert len(names) == len(HOSTILE_IDS)
    assert safe_name("INC-2026-0001") == "INC-2026-0001"
    assert safe_name("a/b") != safe_name("a_b")
