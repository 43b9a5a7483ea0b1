"""The text charts every table shares: bar lengths, the time strip's shares and the sparkline's levels."""

from flopcalc.render.charts import BLOCK_EIGHTHS, COMPUTE_MARK, MEMORY_MARK, bar, sparkline, time_strip


def test_a_plain_bar_is_whole_hashes_of_its_share_with_a_plus_past_the_whole():
    assert bar(75, 100, 40) == "#" * 30
    assert bar(1, 1000, 40) == "#"  # any value shows: at least one cell
    assert bar(150, 100, 40) == "#" * 40 + "+"
    assert bar(0, 100, 40) == bar(5, None, 40) == ""


def test_a_terminal_bar_fills_to_the_eighth_of_a_cell():
    assert bar(75, 100, 40, terminal=True) == "█" * 30
    # 3/64 of 40 cells = 1.875 cells = 15 eighths: one full cell and 7/8 of the next
    assert bar(3, 64, 40, terminal=True) == "█" + BLOCK_EIGHTHS[6]
    assert bar(1, 10**6, 40, terminal=True) == BLOCK_EIGHTHS[0]
    assert bar(2, 1, 40, terminal=True) == "█" * 40 + "+"
    assert not set(bar(75, 100, 40)) & set(BLOCK_EIGHTHS)  # plain output has no block characters


def test_a_time_strip_gives_each_span_its_share_of_the_width_in_order():
    strip = time_strip([(3.0, COMPUTE_MARK), (1.0, MEMORY_MARK)], 40)
    assert strip == COMPUTE_MARK * 30 + MEMORY_MARK * 10
    # 1 : 2 : 1 of 8 cells: 2, 4 and 2
    assert time_strip([(1.0, "a"), (2.0, "b"), (1.0, "a")], 8) == "aabbbbaa"
    assert time_strip([], 8) == time_strip([(0.0, "a")], 8) == ""


def test_a_sparkline_is_each_value_to_the_nearest_eighth_of_the_largest():
    # 1, 2, 4, 8 of 8: 0.875, 1.75, 3.5 and 7 steps above the lowest cell, rounded
    assert sparkline([1.0, 2.0, 4.0, 8.0]) == "▂▃▅█"
    assert sparkline([0.0, 5.0]) == "▁█"
    assert sparkline([]) == sparkline([0.0]) == ""
