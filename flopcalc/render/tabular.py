"""Rows of cells as text: a plain aligned table (rich), CSV, or a Markdown table.

Shared by the renderers of `gpus`, `convert` and `train`, whose outputs are small tables or
label/value lists. rich is imported only when a table is drawn.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any


def table_text(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[int] = (),
    title: Sequence[str] = (),
    footer: Sequence[str] = (),
    show_header: bool = True,
    width: int = 120,
) -> str:
    """An aligned, borderless table with optional lines above and below; columns in `right` align right."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    for line in title:
        console.print(line, highlight=False, markup=False)
    if title:
        console.print()
    table = Table(show_edge=False, pad_edge=False, box=None, show_header=show_header, header_style="bold")
    for index, header in enumerate(headers):
        table.add_column(header, justify="right" if index in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)
    if footer:
        console.print()
    for line in footer:
        console.print(line, highlight=False, markup=False)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue()


def _md_cell(cell: Any) -> str:
    return "" if cell is None else str(cell).replace("|", "\\|").replace("\n", " ")


def markdown_text(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[int] = (),
    title: Sequence[str] = (),
    footer: Sequence[str] = (),
) -> str:
    lines = [*title, ""] if title else []
    lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows)
    if footer:
        lines.append("")
        lines.extend(footer)
    return "\n".join(lines) + "\n"
