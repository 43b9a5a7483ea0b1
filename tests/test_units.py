import pytest

from flopcalc.errors import UsageError
from flopcalc.units import format_number, format_si, parse_compute_quantity, parse_fraction, parse_si_number


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
    [
        (8_180_000_000, "FLOP", "8.18 GFLOP"),
        (0, "FLOP", "0 FLOP"),
        (999, "", "999"),
        (1000, "FLOP", "1 kFLOP"),
        (123_456, "", "123 k"),
        (8.1e21, "FLOP", "8.1 ZFLOP"),
        (0.5, "", "0.5"),
    ],
)
def test_format_si(value, unit, text):
    assert format_si(value, unit) == text


def test_parse_fraction():
    assert parse_fraction("5%") == pytest.approx(0.05)
    assert parse_fraction("0.05") == 0.05
    with pytest.raises(UsageError):
        parse_fraction("five")


@pytest.mark.parametrize(
    "text, value, unit",
    [
        ("3.14e23 flop", 3.14e23, "flop"),
        ("1.5 zflop", 1.5e21, "flop"),
        ("1.1 ZFLOP", 1.1e21, "flop"),
        ("9G flop", 9e9, "flop"),
        ("1e20 FLOPs", 1e20, "flop"),
        ("93.75 pf-days", 93.75, "pf_days"),
        ("3640 petaflop/s-days", 3640, "pf_days"),
        ("2500 gpu-days", 2500, "gpu_days"),
        ("2,500 GPU-days", 2500, "gpu_days"),
        ("60k gpu-hours", 60000, "gpu_hours"),
        ("0 flop", 0, "flop"),
    ],
)
def test_parse_compute_quantity(text, value, unit):
    quantity = parse_compute_quantity(text)
    assert (quantity.value, quantity.unit) == (value, unit)


@pytest.mark.parametrize(
    "text, message",
    [
        ("-5 flop", "negative"),
        ("abc", "not a number"),
        ("5", "no unit"),
        ("5 parsecs", "unknown unit 'parsecs'"),
        ("1e400 flop", "not a finite"),
        ("5 kpf-days", "unknown unit"),
    ],
)
def test_parse_compute_quantity_rejects(text, message):
    with pytest.raises(UsageError, match=message):
        parse_compute_quantity(text)


@pytest.mark.parametrize(
    "value, text",
    [
        (2500, "2,500"),
        (93.75, "93.75"),
        (8.1e21, "8.1e21"),
        (8.1e6, "8,100,000"),
        (3645.8333333, "3,645.83"),
        (0, "0"),
        (1.5e-5, "1.5e-5"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text
