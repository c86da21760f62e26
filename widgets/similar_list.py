"""Similar incidents as a list: score bar, severity, date, title, and why each one matched.

A hit with near-duplicates folded into it can be expanded: its members follow it, indented.
Shared IOCs and ATT&CK techniques are styled as stored text, never as markup, in the "why" line
and wherever they occur in the title.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from widgets.format import printable, score_bar, severity_style, timestamp
from widgets.stored_text import stored

MAX_REASONS = 4
IOC_STYLE = "bold magenta"
TECHNIQUE_STYLE = "bold cyan"
MEMBER_INDENT = "  ↳ "


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
    @property
    def near_duplicate_hits(self) -> Sequence[SimilarHitRow]: ...


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

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.hits: list[SimilarHitRow] = []
        self.expanded: set[str] = set()

    def update_hits(self, hits: Sequence[SimilarHitRow]) -> None:
        """Show these hits, best first, folded, with the cursor on the first."""
        self.hits = list(hits)
        self.expanded = set()
        self._show()
        if hits:
            self.highlighted = 0

    def toggle_members(self) -> SimilarHitRow | None:
        """Unfold (or fold again) the near-duplicates of the highlighted hit; which hit, if any.

        On a member row it folds its group and moves the cursor to the group's hit.
        """
        hit = self._group_of(self.highlighted)
        if hit is None or not hit.near_duplicate_hits:
            return None
        if hit.incident_id in self.expanded:
            self.expanded.discard(hit.incident_id)
        else:
            self.expanded.add(hit.incident_id)
        self._show()
        self.highlighted = self.get_option_index(hit.incident_id)
        return hit

    def _group_of(self, index: int | None) -> SimilarHitRow | None:
        """The top-level hit whose row, or whose member's row, is at index."""
        if index is None:
            return None
        position = 0
        for hit in self.hits:
            size = 1 + (len(hit.near_duplicate_hits) if hit.incident_id in self.expanded else 0)
            if index < position + size:
                return hit
            position += size
        return None

    def _show(self) -> None:
        options = []
        for hit in self.hits:
            options.append(Option(_prompt(hit, expanded=hit.incident_id in self.expanded),
                                  id=hit.incident_id))
            if hit.incident_id in self.expanded:
                options.extend(Option(_prompt(member, member=True), id=member.incident_id)
                               for member in hit.near_duplicate_hits)
        self.clear_options()
        self.add_options(options)


def why_text(hit: SimilarHitRow, *, expanded: bool = False) -> Text:
    """Why a hit matched: shared IOCs and ATT&CK techniques, highlighted, and near-duplicates."""
    text = Text(style="italic")
    parts: list[Text] = []
    for label, values, style, shown in (
            ("IOCs", hit.shared_iocs, IOC_STYLE, MAX_REASONS),
            ("ATT&CK", hit.shared_techniques, TECHNIQUE_STYLE, MAX_REASONS)):
        if values:
            part = Text(f"{label} ")
            part.append_text(Text(", ").join(stored(v, style, one_line=True)
                                             for v in values[:shown]))
            if len(values) > shown:
                part.append(f" +{len(values) - shown}")
            parts.append(part)
    if hit.near_duplicates:
        plural = "s" if hit.near_duplicates != 1 else ""
        action = "x folds them" if expanded else "x lists them"
        parts.append(Text(f"+{hit.near_duplicates} near-duplicate{plural} ({action})"))
    text.append_text(Text(" · ").join(parts) if parts else Text("similar wording"))
    return text


def title_text(hit: SimilarHitRow) -> Text:
    """The hit's title with the IOCs and techniques it shares highlighted as in the "why" line."""
    title = stored(hit.title, one_line=True)
    for values, style in ((hit.shared_iocs, IOC_STYLE), (hit.shared_techniques, TECHNIQUE_STYLE)):
        # An empty list would make an empty pattern, which matches everywhere.
        if words := [printable(value, one_line=True) for value in values if value]:
            title.highlight_words(words, style, case_sensitive=False)
    return title


def _prompt(hit: SimilarHitRow, *, expanded: bool = False, member: bool = False) -> Text:
    severity = printable(hit.severity or "–", one_line=True).lower()
    text = Text(no_wrap=True, overflow="ellipsis")
    if member:
        text.append(MEMBER_INDENT, style="dim")
    text.append(score_bar(hit.score, width=6 if member else 10), style="bold cyan")
    text.append(f" {hit.score:4.2f}  ")
    text.append(f"{severity:<8}", style=severity_style(severity))
    text.append(f" {timestamp(hit.created_at)}  ", style="dim")
    text.append_text(stored(hit.incident_id, "bold", one_line=True))
    text.append("  ")
    text.append_text(title_text(hit))
    text.append("\n")
    text.append("                why: " if member else "            why: ", style="dim")
    text.append_text(why_text(hit, expanded=expanded))
    text.append("\n")
    return text
