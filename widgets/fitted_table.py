"""A DataTable whose column widths and scrollable size are set when its rows are, not later.

Textual's DataTable measures auto-width columns and its scrollable size on its next idle event: a
frame painted before then shows every column at its header's width ("claud", "$0.") and no
scroll bar. On a loaded machine that frame is what a screenshot or a slow terminal gets. Here
`show_rows` measures the cells itself, gives each column that fixed width and sets the virtual
size at once, so every frame after it is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.widgets import DataTable

FittedRow = tuple[str, Sequence[Text]]


class FittedTable(DataTable[Text]):
    """A table of Text cells filled all at once by `show_rows(headers, rows)`."""

    def show_rows(self, headers: Sequence[str], rows: Sequence[FittedRow]) -> None:
        """Replace columns and rows: each column as wide as its widest cell or header."""
        self.clear(columns=True)
        for index, header in enumerate(headers):
            column = [cells[index] for _, cells in rows]
            self.add_column(header, width=self._widest(Text(header), *column), key=header)
        for key, cells in rows:
            self.add_row(*cells, key=key)
        padding = 2 * self.cell_padding * len(headers)
        content_width = sum(column.width for column in self.columns.values())
        header_height = self.header_height if self.show_header else 0
        self.virtual_size = Size(content_width + padding, len(rows) + header_height)

    def _widest(self, *cells: Text) -> int:
        console = self.app.console
        return max(console.measure(cell).maximum for cell in cells)
