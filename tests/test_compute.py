"""Exact arithmetic of conversions and training compute (the lecture case to the digit, GPT-3's 6ND)."""

import pytest

from flopcalc.compute import (
    Throughput,
    convert,
    fleet_estimate,
    quantity_to_flop,
    training_from_counts,
    training_from_forward,
    training_from_params_tokens,
)
from flopcalc.errors import UsageError
from flopcalc.units import PF_DAY_FLOP, parse_compute_quantity

V100_LECTURE = Throughput(peak_flops=125e12, utilization=0.3, gpu="V100-SXM2", precision="fp16")


def test_pf_day_is_exact():
    assert PF_DAY_FLOP == 8.64e19


def test_lecture_check_to_the_digit():
    """30% x 125e12 x 2,500 x 86,400 = 8.1e21 FLOP = 93.75 PF-days."""
    result = convert(parse_compute_quantity("2500 gpu-days"), V100_LECTURE)
    assert result.flop == 8.1e21
    assert result.petaflop_days == 93.75
    assert result.petaflop == 8.1e6
    assert result.fleet.gpu_days == 2500
    assert result.fleet.gpu_hours == 60000


@pytest.mark.parametrize("text", ["8.1e21 flop", "8.1 zflop", "93.75 pf-days", "60000 gpu-hours", "2500 gpu-days"])
def test_every_form_of_the_lecture_quantity_round_trips(text):
    result = convert(parse_compute_quantity(text), V100_LECTURE)
    assert (result.flop, result.petaflop_days, result.fleet.gpu_days) == (8.1e21, 93.75, 2500)


def test_wall_clock_divides_by_gpus():
    result = convert(parse_compute_quantity("2500 gpu-days"), V100_LECTURE, num_gpus=1000)
    assert result.fleet.wall_clock_hours == 60 and result.fleet.wall_clock_days == 2.5


def test_gpt3_6nd():
    training = training_from_params_tokens(175e9, 300e9)
    assert training.training_flops == 3.15e23
    assert training.forward_flops_per_example == 350e9 and training.backward_flops_per_example == 700e9
    assert training.petaflop_days == pytest.approx(3.15e23 / 8.64e19, rel=1e-15)


def test_gpt3_on_a100_energy_and_cost():
    """3.14e23 FLOP at 40% of 312 TFLOPS: GPU-hours = 3.14e23 / (124.8e12 x 3600)."""
    fleet = fleet_estimate(3.14e23, Throughput(312e12, 0.4), 1024, tdp_w=400, pue=1.25, price_per_gpu_hour=2)
    gpu_hours = 3.14e23 / (124.8e12 * 3600)
    assert fleet.gpu_hours == pytest.approx(gpu_hours, rel=1e-15)
    assert fleet.wall_clock_hours == pytest.approx(gpu_hours / 1024, rel=1e-15)
    assert fleet.energy_kwh == pytest.approx(400 * gpu_hours * 1.25 / 1000, rel=1e-15)
    assert fleet.cost == pytest.approx(2 * gpu_hours, rel=1e-15)
    assert "cost" in fleet.to_dict()
    assert "cost" not in fleet_estimate(1e20, Throughput(1e12, 0.5)).to_dict()


def test_no_tdp_means_no_energy():
    assert fleet_estimate(1e20, Throughput(1e12, 0.5)).energy_kwh is None


def test_training_from_counts_and_forward():
    counted = training_from_counts(100, 200, examples=1000, epochs=3)
    assert counted.training_flops == 900_000
    forward = training_from_forward(4.1e9, 1.28e6, 90)
    assert forward.backward_flops_per_example == 8.2e9
    assert forward.training_flops == pytest.approx(3 * 4.1e9 * 1.28e6 * 90, rel=1e-15)
    assert "2x forward" in forward.notes[0]


@pytest.mark.parametrize("utilization", [0, -0.1, 1.01, 2])
def test_utilization_must_be_in_zero_one(utilization):
    with pytest.raises(UsageError, match=r"utilization must be in \(0, 1\]"):
        Throughput(125e12, utilization)


@pytest.mark.parametrize(
    "call",
    [
        lambda: fleet_estimate(1e20, V100_LECTURE, 0),
        lambda: fleet_estimate(1e20, V100_LECTURE, pue=0.5),
        lambda: fleet_estimate(-1, V100_LECTURE),
        lambda: training_from_params_tokens(-1, 10),
        lambda: training_from_forward(1e9, 0),
        lambda: Throughput(0, 0.3),
    ],
)
def test_bad_numbers_raise_usage_errors(call):
    with pytest.raises(UsageError):
        call()


def test_gpu_time_needs_a_throughput():
    with pytest.raises(UsageError, match="needs a GPU"):
        quantity_to_flop(parse_compute_quantity("5 gpu-days"))


def test_measured_throughput_plugs_in_the_same_way():
    """The seam for calibration: any peak and origin label, same arithmetic (1 PF-day at 0.1 PFLOP/s = 240 h)."""
    measured = Throughput(peak_flops=100e12, utilization=1.0, gpu="H100-SXM", precision="bf16", origin="measured")
    result = convert(parse_compute_quantity("8.64e19 flop"), measured)
    assert result.fleet.gpu_hours == 240 and result.to_dict()["peak_origin"] == "measured"


def test_a_counted_zero_is_shown_as_a_number_not_a_python_repr():
    """A model that counts 0 FLOPs (a Flatten) reaches training_from_counts as Fraction(0, 1)."""
    from fractions import Fraction

    with pytest.raises(UsageError) as caught:
        training_from_counts(Fraction(0), Fraction(0), 10)
    assert "forward FLOPs per example must be a finite number > 0, got 0" in str(caught.value)
    assert "Fraction" not in str(caught.value)
