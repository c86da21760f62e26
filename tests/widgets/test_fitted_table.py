"""FittedTable: the first frame after `show_rows` already has every cell whole and the right
scrollable size (a DataTable measures both only on its next idle event)."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Size

from widgets.fitted_table import FittedTable

HEADERS = ("Model", "Calls", "USD")
ROWS = [(f"model-{index}", [Text(f"claude-sonnet-4-variant-{index}"), Text(f"{index:,}"),
                            Text("$0.123456")]) for index in range(30)]
# The widest cell of each column, two cells of padding each, and the header line.
WHOLE_SIZE = Size(len("claude-sonnet-4-variant-29") + len("Calls") + len("$0.123456") + 6, 31)


class TableApp(App[None]):
    """One fitted table filling a small screen."""

    def compose(self) -> ComposeResult:
        yield FittedTable(id="table")


async def test_rows_show_whole_before_the_table_is_idle() -> None:
    app = TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(FittedTable)
        table.show_rows(HEADERS, ROWS)
        # No await since show_rows: the table has not had an idle event yet.
        first_row = table.render_line(1).text
        assert "claude-sonnet-4-variant-0" in first_row and "$0.123456" in first_row
        assert table.virtual_size == WHOLE_SIZE
        await pilot.pause()
        assert table.virtual_size == WHOLE_SIZE
        assert "claude-sonnet-4-variant-0" in table.render_line(1).text


async def test_showing_rows_again_replaces_columns_and_rows() -> None:
    app = TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(FittedTable)
        table.show_rows(HEADERS, ROWS)
        table.show_rows(HEADERS, [("only", [Text("gpt"), Text("1"), Text("unpriced")])])
        await pilot.pause()
        assert table.row_count == 1 and len(table.columns) == 3
        assert table.render_line(1).text.split() == ["gpt", "1", "unpriced"]
        assert table.virtual_size == Size(len("Model") + len("Calls") + len("unpriced") + 6, 2)
