"""Shared IOCs and techniques are highlighted in a similar hit's title, as in its "why" line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from widgets.similar_list import IOC_STYLE, TECHNIQUE_STYLE, title_text


@dataclass
class Hit:
    """A similar hit as the list reads it."""

    title: str
    shared_iocs: list[str] = field(default_factory=list)
    shared_techniques: list[str] = field(default_factory=list)
    incident_id: str = "INC-1"
    severity: str | None = "high"
    created_at: datetime = datetime(2026, 11, 21, tzinfo=UTC)
    score: float = 0.9
    near_duplicates: int = 0
    near_duplicate_hits: Sequence[Hit] = ()


def styled(hit: Hit) -> dict[str, str]:
    text = title_text(hit)
    return {text.plain[span.start:span.end]: str(span.style) for span in text.spans}


def test_shared_indicators_in_the_title_are_highlighted() -> None:
    hit = Hit("Beacon to CDN-UPDATE.example.org after T1059.001 macro",
              shared_iocs=["cdn-update.example.org", "203.0.113.7"],
              shared_techniques=["T1059.001"])
    assert styled(hit) == {"CDN-UPDATE.example.org": IOC_STYLE, "T1059.001": TECHNIQUE_STYLE}


def test_a_title_without_shared_indicators_is_plain_and_markup_stays_text() -> None:
    hit = Hit("[bold]x[/] \x1b[2J phishing", shared_iocs=["", "[/]"])
    text = title_text(hit)
    assert text.plain == "[bold]x[/] \\x1b[2J phishing"
    assert styled(hit) == {"[/]": IOC_STYLE}
    assert styled(Hit("Lost laptop")) == {}
