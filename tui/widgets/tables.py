"""Keeping a DataTable in step with fresh records without redrawing what did not change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets._data_table import RowKey


def selected_key(table: DataTable) -> str | None:
    if table.row_count == 0 or not table.is_valid_row_index(table.cursor_row):
        return None
    row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    return row_key.value


def is_current(event: DataTable.RowHighlighted) -> bool:
    """False for a highlight the table reported before the cursor was moved again (e.g. by a rebuild):
    only the latest position is the user's choice."""
    return event.cursor_row == event.data_table.cursor_row


def sync_rows(table: DataTable, rows: Sequence[tuple[str, Sequence[object]]]) -> bool:
    """Show `rows` (key, cells), in order. Same keys: only changed cells are updated. Otherwise the table is
    rebuilt and the cursor stays on the row it was on. Returns whether anything changed."""
    keys = [key for key, _ in rows]
    current = [row.key.value for row in table.ordered_rows]
    if keys == current:
        changed = False
        columns = [column.key for column in table.ordered_columns]
        for key, cells in rows:
            for column, new, old in zip(columns, cells, table.get_row(key), strict=False):
                if new != old:
                    table.update_cell(key, column, new)
                    changed = True
        return changed
    selected = selected_key(table)
    scroll_y = table.scroll_y
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if selected in keys:
        table.move_cursor(row=keys.index(selected), animate=False, scroll=False)
        table.scroll_to(y=scroll_y, animate=False, immediate=True)
    return True


class FittedTable(DataTable):
    """A DataTable whose last column takes the width that is left, so no horizontal scrollbar eats a line."""

    def __init__(self, *args: object, min_last: int = 8, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.min_last = min_last

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """With every column of a fixed width and every row one line high there is nothing to measure, yet
        DataTable measures each new cell (about 20 µs each: 140 ms for 1,000 versions). Skip that then."""
        columns = list(self.columns.values())
        fixed = all(not column.auto_width for column in columns)
        one_line = all(not row.auto_height and row.label is None for row in self.rows.values())
        if not (fixed and one_line):
            super()._update_dimensions(new_rows)
            return
        header = self.header_height if self.show_header else 0
        width = sum(column.get_render_width(self) for column in columns)
        self.virtual_size = Size(width, self._total_row_height + header)

    def on_resize(self) -> None:
        self.fit_last_column()

    def fit_last_column(self) -> None:
        columns = self.ordered_columns
        if not columns or not self.size.width:
            return
        last = columns[-1]
        used = sum(column.get_render_width(self) for column in columns[:-1])
        # One cell is kept for the vertical scrollbar, present or not, so the width does not jump.
        room = self.size.width - 1 - used - 2 * self.cell_padding
        # A last column that cannot show `min_last` cells is left blank rather than cut mid-value.
        width = room if room >= self.min_last else 0
        if width != last.width:
            last.width = width
            # DataTable has no public way to resize a column; these are what add_column sets in motion.
            self._require_update_dimensions = True
            self._clear_caches()
            self.refresh()
