"""Similar incidents as a list: score bar, severity, date, title, and why each one matched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from widgets.format import printable, score_bar, severity_style, timestamp

MAX_REASONS = 4


class SimilarHitRow(Protocol):
    """What the list shows of one hit (the store's SimilarHit fits)."""

    @property
    def incident_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def score(self) -> float: ...
    @property
    def shared_iocs(self) -> list[str]: ...
    @property
    def shared_techniques(self) -> list[str]: ...
    @property
    def near_duplicates(self) -> int: ...


class SimilarList(OptionList):
    """One two-line option per similar incident; the option id is the incident id."""

    DEFAULT_CSS = """
    SimilarList {
        height: 1fr;
        border: none;
        padding: 0 1;
        background: $surface;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def update_hits(self, hits: Sequence[SimilarHitRow]) -> None:
        """Show these hits, best first, with the cursor on the first."""
        self.clear_options()
        self.add_options([Option(_prompt(hit), id=hit.incident_id) for hit in hits])
        if hits:
            self.highlighted = 0


def why_matched(hit: SimilarHitRow) -> str:
    """A short reason: shared IOCs, shared ATT&CK techniques, near-duplicates."""
    reasons = []
    if hit.shared_iocs:
        more = len(hit.shared_iocs) - MAX_REASONS
        reasons.append("IOCs " + ", ".join(hit.shared_iocs[:MAX_REASONS])
                       + (f" +{more}" if more > 0 else ""))
    if hit.shared_techniques:
        reasons.append("ATT&CK " + ", ".join(hit.shared_techniques[:MAX_REASONS]))
    if hit.near_duplicates:
        plural = "s" if hit.near_duplicates != 1 else ""
        reasons.append(f"{hit.near_duplicates} near-duplicate{plural}")
    return " · ".join(reasons) if reasons else "similar wording"


def _prompt(hit: SimilarHitRow) -> Text:
    severity = printable(hit.severity or "–", one_line=True).lower()
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(score_bar(hit.score), style="bold cyan")
    text.append(f" {hit.score:4.2f}  ")
    text.append(f"{severity:<8}", style=severity_style(severity))
    text.append(f" {timestamp(hit.created_at)}  ", style="dim")
    text.append(printable(hit.incident_id, one_line=True), style="bold")
    text.append(f"  {printable(hit.title, one_line=True)}\n")
    text.append("            why: ", style="dim")
    text.append(printable(why_matched(hit), one_line=True), style="italic")
    text.append("\n")
    return text
