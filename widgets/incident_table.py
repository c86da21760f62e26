"""A fast incident table: draws only the visible lines of the rows it holds (a window of pages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal, Protocol

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from widgets.format import printable, relative_age

Edge = Literal["next", "previous"]


class IncidentRow(Protocol):
    """What the table shows of one incident (the store's IncidentSummary fits)."""

    @property
    def incident_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def latest_severity(self) -> str | None: ...
    @property
    def analysis_count(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True)
class _Column:
    label: str
    width: int
    align: Literal["left", "right"] = "left"


class IncidentTable(Widget, can_focus=True):
    """Rows of incidents with a cursor; asks for more rows when the cursor nears an edge."""

    DEFAULT_CSS = """
    IncidentTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .incident-table--header { background: $panel; color: $foreground; text-style: bold; }
        & > .incident-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .incident-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .incident-table--muted { color: $text-muted; }
        & > .incident-table--critical { color: $error; text-style: bold; }
        & > .incident-table--high { color: $error; }
        & > .incident-table--medium { color: $warning; }
        & > .incident-table--low { color: $success; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "incident-table--header", "incident-table--cursor", "incident-table--muted",
        "incident-table--critical", "incident-table--high", "incident-table--medium",
        "incident-table--low",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False, id="table.up"),
        Binding("down", "move(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("enter", "select", "Open", id="table.select"),
    ]
    cursor: reactive[int] = reactive(0, always_update=True, repaint=True)

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another row."""

        table: IncidentTable
        index: int

    @dataclass
    class Selected(Message):
        """The analyst chose a row (Enter or a double click)."""

        table: IncidentTable
        incident_id: str

    @dataclass
    class EdgeApproached(Message):
        """The cursor came near the first or last held row."""

        table: IncidentTable
        edge: Edge

    def __init__(self, *, now: Callable[[], datetime] | None = None, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.now = now or (lambda: datetime.now(UTC))
        self.rows: list[IncidentRow] = []
        self.similar_counts: dict[str, int] = {}
        self.top = 0
        self.edge_margin = 60
        # Similar counts come from a top-k search: k means "k or more".
        self.similar_cap: int | None = None
        self._id_width = 16

    @property
    def visible_rows(self) -> int:
        """How many data rows fit under the header."""
        return max(1, self.size.height - 1)

    @property
    def selected(self) -> IncidentRow | None:
        """The row under the cursor."""
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def set_rows(self, rows: Sequence[IncidentRow], cursor: int = 0, screen_row: int = 0) -> None:
        """Replace every row; the cursor goes to `cursor`, `screen_row` lines below the top."""
        self.rows = list(rows)
        self._id_width = max([8, *(min(24, len(r.incident_id)) for r in self.rows[:500])])
        self.top = max(0, cursor - max(0, screen_row))
        self._move_to(cursor, notify_edge=False)
        self.refresh()

    def append_rows(self, rows: Sequence[IncidentRow], dropped_head: int = 0) -> None:
        """Add rows at the bottom, after `dropped_head` rows fell off the top."""
        del self.rows[:dropped_head]
        self.rows.extend(rows)
        self.top = max(0, self.top - dropped_head)
        self._move_to(self.cursor - dropped_head, notify_edge=False)
        self.refresh()

    def prepend_rows(self, rows: Sequence[IncidentRow], dropped_tail: int = 0) -> None:
        """Add rows at the top, after `dropped_tail` rows fell off the bottom; the view stays."""
        if dropped_tail:
            del self.rows[len(self.rows) - dropped_tail:]
        self.rows[:0] = rows
        self.top += len(rows)
        self._move_to(self.cursor + len(rows), notify_edge=False)
        self.refresh()

    def set_similar_counts(self, counts: dict[str, int]) -> None:
        """Show known similar-incident counts (merged with those already known)."""
        self.similar_counts.update(counts)
        self.refresh()

    def visible_incident_ids(self) -> list[str]:
        """The incidents on screen, top to bottom."""
        return [row.incident_id for row in self.rows[self.top:self.top + self.visible_rows]]

    # Cursor ----------------------------------------------------------------------------------

    def _move_to(self, index: int, *, notify_edge: bool = True) -> None:
        index = max(0, min(index, len(self.rows) - 1)) if self.rows else 0
        if index < self.top:
            self.top = index
        elif index >= self.top + self.visible_rows:
            self.top = index - self.visible_rows + 1
        # Never leave blank lines at the bottom while rows above are hidden.
        self.top = max(0, min(self.top, len(self.rows) - self.visible_rows))
        self.cursor = index
        self.post_message(self.Highlighted(self, index))
        if notify_edge and self.rows:
            if len(self.rows) - 1 - index < self.edge_margin:
                self.post_message(self.EdgeApproached(self, "next"))
            if index < self.edge_margin:
                self.post_message(self.EdgeApproached(self, "previous"))

    def action_move(self, delta: int) -> None:
        """Move the cursor by `delta` rows."""
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Move a screenful down (1) or up (-1), keeping the cursor's place on screen."""
        step = self.visible_rows * direction
        limit = max(0, len(self.rows) - self.visible_rows)
        self.top = max(0, min(self.top + step, limit))
        self._move_to(self.cursor + step)

    def action_first(self) -> None:
        """Go to the first held row."""
        self._move_to(0)

    def action_last(self) -> None:
        """Go to the last held row."""
        self._move_to(len(self.rows) - 1)

    def action_select(self) -> None:
        """Open the row under the cursor."""
        if (row := self.selected) is not None:
            self.post_message(self.Selected(self, row.incident_id))

    def on_click(self, event: events.Click) -> None:
        """Put the cursor on the clicked row; a double click opens it."""
        if event.y >= 1 and self.top + event.y - 1 < len(self.rows):
            self._move_to(self.top + event.y - 1)
            if event.chain >= 2:
                self.action_select()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        """Scroll with the wheel by moving the cursor."""
        event.stop()
        self._move_to(self.cursor + 3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """Scroll with the wheel by moving the cursor."""
        event.stop()
        self._move_to(self.cursor - 3)

    def on_resize(self) -> None:
        """Keep the cursor on screen when the table shrinks."""
        self._move_to(self.cursor, notify_edge=False)

    # Drawing ---------------------------------------------------------------------------------

    def _columns(self, width: int) -> list[_Column]:
        fixed = [_Column("Severity", 8), _Column("An", 3, "right"), _Column("Sim", 3, "right"),
                 _Column("Updated", 10, "right")]
        id_column = _Column("Incident", self._id_width)
        used = 1 + id_column.width + sum(c.width + 1 for c in fixed) + 1
        title = _Column("Title", max(8, width - used))
        return [id_column, title, *fixed]

    def _cells(self, row: IncidentRow) -> list[str]:
        similar = self.similar_counts.get(row.incident_id)
        if similar is None:
            similar = getattr(row, "similar_count", None)
        return [printable(row.incident_id, one_line=True), printable(row.title, one_line=True),
                printable(row.latest_severity or "–", one_line=True), str(row.analysis_count),
                _similar_text(similar, self.similar_cap), relative_age(row.updated_at, self.now())]

    def render_line(self, y: int) -> Strip:
        """Draw the header on line 0 and a row on every other line."""
        width = self.size.width
        base = self.rich_style
        columns = self._columns(width)
        if y == 0:
            style = self.get_component_rich_style("incident-table--header")
            return self._strip([c.label for c in columns], columns, [style] * 6, width, style)
        index = self.top + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        row_style = base
        if index == self.cursor:
            row_style = base + self.get_component_rich_style("incident-table--cursor")
        severity = (row.latest_severity or "").lower()
        severity_style = row_style
        if severity in ("critical", "high", "medium", "low"):
            severity_style = row_style + self.get_component_rich_style(
                f"incident-table--{severity}", partial=True)
        muted = row_style + self.get_component_rich_style("incident-table--muted", partial=True)
        styles = [row_style, row_style, severity_style, muted, muted, muted]
        if index == self.cursor:
            styles = [row_style, row_style, severity_style, row_style, row_style, row_style]
        return self._strip(self._cells(row), columns, styles, width, row_style)

    @staticmethod
    def _strip(cells: list[str], columns: list[_Column], styles: list[Style], width: int,
               fill: Style) -> Strip:
        segments = [Segment(" ", fill)]
        for text, column, style in zip(cells, columns, styles, strict=True):
            segments.append(Segment(_fit(text, column.width, column.align), style))
            segments.append(Segment(" ", fill))
        return Strip(segments).crop_extend(0, width, fill)


def _similar_text(similar: int | None, cap: int | None) -> str:
    if similar is None:
        return "·"
    return f"{cap}+" if cap is not None and similar >= cap else str(similar)


def _fit(text: str, width: int, align: str) -> str:
    if cell_len(text) > width:
        return set_cell_size(text, max(0, width - 1)) + "…"
    padding = " " * (width - cell_len(text))
    return padding + text if align == "right" else text + padding
