"""The charts' colours: ten distinct Tableau 10 colours, the palette using each once."""

from __future__ import annotations

import re

from flopcalc.render import colors


def test_the_palette_is_ten_distinct_hex_colours_naming_every_colour_once():
    named = {colors.BLUE, colors.ORANGE, colors.RED, colors.TEAL, colors.GREEN}
    named |= {colors.YELLOW, colors.PURPLE, colors.PINK, colors.BROWN, colors.GREY}
    assert len(named) == 10
    assert set(colors.PALETTE) == named and len(colors.PALETTE) == 10
    assert all(re.fullmatch(r"#[0-9a-f]{6}", colour) for colour in named)
    assert colors.PALETTE[:4] == ("#4e79a7", "#f28e2b", "#59a14f", "#e15759")


def test_forward_and_backward_keep_blue_and_orange_on_every_page():
    assert (colors.FORWARD, colors.BACKWARD) == (colors.BLUE, colors.ORANGE) == ("#4e79a7", "#f28e2b")
