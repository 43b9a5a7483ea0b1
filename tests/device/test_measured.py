"""The measured device profile's record in the device room: read from its mapping with one-line errors, merged by
precision, and refused for a device it was not measured on."""

from dataclasses import replace

import pytest

from flopcalc.device import KernelRates, ProfileCalibration, parse_measured_profile
from flopcalc.errors import CalibrationError

RATES = KernelRates(
    matmul=((8, 32, 32, 0.01),),
    memory=((4096, 2.0),),
    elementwise=((1024, 0.2),),
    view_us=2.5,
    step_op_us={"forward": 6.0, "backward": 4.0, "optimizer": 2.0},
    convolution=((8, 8, 72, 1, 0.01, 0.02, 0.03),),
)


def _profile(device_name="Some CPU", precisions=None, busbw=None):
    return ProfileCalibration(
        device_name,
        "2026-12-03T10:00:00+00:00",
        "2.13",
        {"fp32": RATES} if precisions is None else precisions,
        2,
        busbw or {},
    )


def test_a_profile_reads_back_from_its_mapping():
    profile = _profile(busbw={"intra": {"all_reduce": ((1 << 20, 40.0),), "p2p": ((1 << 20, 20.0),)}})
    assert parse_measured_profile(profile.to_dict(), "here") == profile


def test_the_profile_of_another_device_is_refused_with_both_names():
    assert _profile().for_device("Some CPU") == _profile()
    with pytest.raises(CalibrationError, match="measured on 'Some CPU', not on 'Other CPU'"):
        _profile().for_device("Other CPU")


def test_a_newer_measurement_keeps_the_precisions_it_did_not_measure():
    merged = _profile().merged_with(_profile(precisions={"bf16": RATES}))
    assert set(merged.precisions) == {"fp32", "bf16"}
    assert _profile().merged_with(_profile("Other CPU", {"bf16": RATES})).precisions.keys() == {"bf16"}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["precisions"]["fp32"].pop("step_op_us"), "here fp32: missing step_op_us"),
        (lambda d: d["precisions"]["fp32"].update(convolution=[[8, 8, 8, 1.5, 1.0, 1.0, 1.0]]), "groups must be whole"),
        (
            lambda d: d["precisions"]["fp32"].update(matmul=[[8, 32, 32, -1.0]]),
            "every point must be 4 positive numbers",
        ),
        (lambda d: d.update(busbw={"moon": {"all_reduce": [[1, 1.0]]}}), "'moon' must be one of world, intra, inter"),
        (lambda d: d.update(busbw={"intra": {"broadcast": [[1, 1.0]]}}), "unknown collective 'broadcast'"),
        (lambda d: d.pop("device_name"), "'device_name' must be a non-empty string"),
    ],
)
def test_a_broken_profile_is_one_line_naming_the_field(change, message):
    data = _profile().to_dict()
    change(data)
    with pytest.raises(CalibrationError, match=message.replace("(", r"\(")):
        parse_measured_profile(data, "here")


def test_op_rates_read_back_and_a_profile_saved_before_them_still_loads():
    timed = _profile(precisions={"fp32": replace(RATES, op_rates={"sqrt": ((1024, 0.5), (1 << 20, 2.0))})})
    assert parse_measured_profile(timed.to_dict(), "here") == timed
    older = _profile().to_dict()
    del older["precisions"]["fp32"]["op_rates"]
    assert parse_measured_profile(older, "here").precisions["fp32"].op_rates == {}
    broken = timed.to_dict()
    broken["precisions"]["fp32"]["op_rates"]["sqrt"] = [[1024, 0.0]]
    with pytest.raises(CalibrationError, match="here fp32 op_rates sqrt: every point must be 2 positive"):
        parse_measured_profile(broken, "here")
    emptied = timed.to_dict()
    emptied["precisions"]["fp32"]["op_rates"] = []  # a list is no mapping, empty or not: refused, not read as none
    with pytest.raises(CalibrationError, match="here fp32 op_rates: expected a mapping"):
        parse_measured_profile(emptied, "here")
