"""`count`'s table: on a terminal, each category's share of the FLOPs as a bar under the category table;
piped, no bar, no colour, no block character."""

import re

from flopcalc.counting.report import CATEGORIES, CountReport, InputInfo, LayerCount
from flopcalc.render.charts import BLOCK_EIGHTHS
from flopcalc.render.count import CATEGORY_BAR_WIDTH, render_table

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _report() -> CountReport:
    """matmul 100 + 200 = 300 FLOPs, elementwise 50 + 50 = 100: 3/4 and 1/4 of 400."""
    forward = dict.fromkeys(CATEGORIES, 0) | {"matmul": 100, "elementwise": 50}
    backward = dict.fromkeys(CATEGORIES, 0) | {"matmul": 200, "elementwise": 50}
    root = LayerCount("", "Net", 0, 16, forward, backward)
    return CountReport("net", (InputInfo(shape=(1, 4), dtype="float32"),), "meta", (root,), 16, 64)


def _bar_line(text: str, category: str) -> str:
    return next(line for line in ANSI.sub("", text).splitlines() if line.strip().startswith(category) and "█" in line)


def test_on_a_terminal_each_category_gets_its_share_of_the_bar_width():
    text = render_table(_report(), color=True, width=100)
    assert "FLOPs by category (share of the total):" in ANSI.sub("", text)
    matmul, elementwise = _bar_line(text, "matmul"), _bar_line(text, "elementwise")
    assert matmul.count("█") == CATEGORY_BAR_WIDTH * 3 // 4 == 30
    assert elementwise.count("█") == CATEGORY_BAR_WIDTH // 4 == 10
    assert matmul.rstrip().endswith("75.0%") and elementwise.rstrip().endswith("25.0%")
    assert matmul.index("75.0%") == elementwise.index("25.0%")  # the bars are padded to one width
    assert "\x1b[" in text  # the bars are coloured


def test_piped_the_table_has_no_bar_no_colour_and_no_block_character():
    text = render_table(_report(), color=False, width=100)
    assert "by category" not in text and "\x1b[" not in text
    assert not set(text) & set(BLOCK_EIGHTHS)
