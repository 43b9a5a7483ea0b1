"""Reading a size-dependent figure between its points, by hand."""

import math

import pytest

from flopcalc.device import Curve
from flopcalc.errors import CalibrationError


def test_a_step_curve_holds_each_threshold_up_to_the_next():
    curve = Curve(((0, 0.1), (1, 0.6), (16, 0.9), (128, 0.95)), "Calculon a100_80g.json")
    assert curve.at(0.5) == 0.1
    assert curve.at(1) == 0.6
    assert curve.at(15.99) == 0.6
    assert curve.at(100) == 0.9
    assert curve.at(1e6) == 0.95


def test_a_log_linear_curve_interpolates_in_log_size():
    curve = Curve(((1, 0.2), (100, 0.8)), "a sweep", "log-linear")
    assert curve.at(10) == pytest.approx(0.5)  # log10(10)/log10(100) = 1/2 of the way
    assert curve.at(0.5) == 0.2 and curve.at(1000) == 0.8  # the ends hold outside
    assert Curve(((0, 0.4), (10, 0.9)), "s", "log-linear").at(5) == pytest.approx(0.65)  # from 0: linear


@pytest.mark.parametrize(
    "points, source, message",
    [
        ((), "s", "at least one"),
        (((2, 0.5), (1, 0.6)), "s", "ascending"),
        (((1, 0.0),), "s", "> 0"),
        (((1, math.nan),), "s", "> 0"),
        (((1, 0.5),), " ", "source"),
    ],
)
def test_a_bad_curve_is_one_line(points, source, message):
    with pytest.raises(CalibrationError, match=message):
        Curve(points, source)
