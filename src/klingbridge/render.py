"""Terminal rendering helpers shared by the CLI and the demo."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text


def add_row(table: Table, *cells: str) -> None:
    """Add a row of plain text: vendor strings like "[doc]" or "[mp3, wav]" are not markup."""
    table.add_row(*(Text(cell) for cell in cells))
