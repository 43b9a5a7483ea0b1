import pytest

from flopcalc.errors import UsageError
from flopcalc.units import format_si, parse_fraction, parse_si_number


@pytest.mark.parametrize(
    "text, value",
    [("9G", 9e9), ("26M", 26e6), ("1e18", 1e18), ("5", 5.0), ("1.5k", 1500.0), (" 2 T ", 2e12), (7, 7.0)],
)
def test_parse_si_number(text, value):
    assert parse_si_number(text) == pytest.approx(value, rel=0, abs=0)


@pytest.mark.parametrize("text", ["", "G", "nine", "9X", "1e", True, "inf"])
def test_parse_si_number_rejects(text):
    with pytest.raises(UsageError):
        parse_si_number(text)


@pytest.mark.parametrize(
    "value, unit, text",
    [(8_180_000_000, "FLOP", "8.18 GFLOP"), (0, "FLOP", "0 FLOP"), (999, "", "999"), (1000, "FLOP", "1 kFLOP"),
     (123_456, "", "123 k"), (8.1e21, "FLOP", "8.1 ZFLOP"), (0.5, "", "0.5")],
)
def test_format_si(value, unit, text):
    assert format_si(value, unit) == text


def test_parse_fraction():
    assert parse_fraction("5%") == pytest.approx(0.05)
    assert parse_fraction("0.05") == 0.05
    with pytest.raises(UsageError):
        parse_fraction("five")
