"""A sliding window of keyset pages over the incident list: never more than a few pages held."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store import IncidentPage, IncidentSummary, PageCursor


class PageWindow:
    """Consecutive pages of one listing; knows where it sits when anchored at the top or end."""

    def __init__(self, max_pages: int = 5) -> None:
        self.max_pages = max_pages
        self.pages: list[IncidentPage] = []
        self.rows: list[IncidentSummary] = []
        self.total: int | None = None
        # Rows before the window (known when reached from the top) or after it (from the end).
        self.rows_before: int | None = 0
        self.rows_after: int | None = None

    def reset(self, pages: list[IncidentPage], *, from_end: bool = False) -> None:
        """Replace the window with freshly loaded pages from the top (or the end)."""
        self.pages = list(pages)
        self.rows = [row for page in self.pages for row in page.rows]
        self.rows_before, self.rows_after = (None, 0) if from_end else (0, None)

    @property
    def next_cursor(self) -> PageCursor | None:
        """Where the page after the window starts, None at the end of the list."""
        return self.pages[-1].next_cursor if self.pages else None

    @property
    def previous_cursor(self) -> PageCursor | None:
        """Where the page before the window ends, None at the top of the list."""
        return self.pages[0].previous_cursor if self.pages else None

    @property
    def at_top(self) -> bool:
        """Whether the window starts at the first incident."""
        return bool(self.pages) and self.previous_cursor is None

    def append(self, page: IncidentPage) -> int:
        """Add the next page; returns how many rows fell off the top."""
        self.pages.append(page)
        self.rows.extend(page.rows)
        if self.rows_after is not None:
            self.rows_after = max(0, self.rows_after - len(page.rows))
        if page.next_cursor is None:
            self.rows_after = 0
        if len(self.pages) <= self.max_pages:
            return 0
        dropped = len(self.pages.pop(0).rows)
        del self.rows[:dropped]
        if self.rows_before is not None:
            self.rows_before += dropped
        return dropped

    def prepend(self, page: IncidentPage) -> int:
        """Add the previous page; returns how many rows fell off the bottom."""
        self.pages.insert(0, page)
        self.rows[:0] = page.rows
        if self.rows_before is not None:
            self.rows_before = max(0, self.rows_before - len(page.rows))
        if page.previous_cursor is None:
            self.rows_before = 0
        if len(self.pages) <= self.max_pages:
            return 0
        dropped = len(self.pages.pop().rows)
        del self.rows[len(self.rows) - dropped:]
        if self.rows_after is not None:
            self.rows_after += dropped
        return dropped

    def position(self, index: int) -> int | None:
        """The absolute 0-based position of window row `index`, when it can be known."""
        if self.rows_before is not None:
            return self.rows_before + index
        if self.rows_after is not None and self.total is not None:
            return self.total - self.rows_after - len(self.rows) + index
        return None

    def index_of(self, incident_id: str) -> int | None:
        """The window index of an incident, None when it is not in the window."""
        for index, row in enumerate(self.rows):
            if row.incident_id == incident_id:
                return index
        return None
