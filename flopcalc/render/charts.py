"""Charts drawn in text beside the tables (bars, a time strip, sparklines): one way for every command.

Plain output (a pipe, a file) keeps `#` bars only where a table always had them (plan's memory); block
characters are for a terminal, which only the CLI can tell, so the renderers take it as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

BLOCK_EIGHTHS = "▏▎▍▌▋▊▉█"  # a cell filled 1/8 .. 8/8 from the left
SPARK_LEVELS = "▁▂▃▄▅▆▇█"  # a cell filled 1/8 .. 8/8 from the bottom
COMPUTE_MARK, MEMORY_MARK, COMMUNICATION_MARK = "█", "░", "▒"  # a time strip's cells: what bounds the time


def bar(value: float | None, whole: float | None, width: int, *, terminal: bool = False) -> str:
    """`value` as a share of `whole` over `width` cells, with `+` after a full bar when it is more than `whole`.
    Plain: whole `#` cells, at least one for any value; on a terminal: blocks to the eighth of a cell."""
    if not value or not whole:
        return ""
    cells = value / whole * width
    over = "+" if cells > width else ""
    if not terminal:
        return "#" * min(width, max(1, round(cells))) + over
    full, eighths = divmod(min(width * 8, max(1, round(cells * 8))), 8)
    return BLOCK_EIGHTHS[-1] * full + (BLOCK_EIGHTHS[eighths - 1] if eighths else "") + over


def time_strip(spans: Sequence[tuple[float, str]], width: int) -> str:
    """Spans of (time, mark) laid end to end over `width` cells; each cell shows the span running at its middle,
    so a span gets its share of the width (a span shorter than half a cell may show in none)."""
    total = sum(time for time, _ in spans)
    if not spans or total <= 0:
        return ""
    ends = list(accumulate(time for time, _ in spans))
    cells, index = [], 0
    for cell in range(width):
        middle = (cell + 0.5) / width * total
        while index < len(spans) - 1 and ends[index] <= middle:
            index += 1
        cells.append(spans[index][1])
    return "".join(cells)


def sparkline(values: Sequence[float]) -> str:
    """One cell per value, its height the value's share of the largest (to the nearest eighth; zero is the
    lowest cell)."""
    top = max(values, default=0.0)
    if top <= 0:
        return ""
    steps = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[int(max(0.0, value) / top * steps + 0.5)] for value in values)
