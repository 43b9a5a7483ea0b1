"""Pipeline schedules by hand: 1F1B, interleaved 1F1B, uneven stages."""

import pytest

from flopcalc.errors import UsageError
from flopcalc.predict import bubble_fraction, pipeline_slots, stage_layers


def test_1f1b_bubble_is_p_minus_1_over_m():
    assert bubble_fraction(8, 32) == pytest.approx(7 / 32)
    assert pipeline_slots(8, 32) == 39  # m + p - 1 micro-batch slots
    assert bubble_fraction(1, 5) == 0


def test_interleaving_divides_the_bubble_by_the_model_chunks():
    assert bubble_fraction(8, 64, 3) == pytest.approx(7 / 192)  # Korthikanti's 175B: p 8, m 64, v 3
    assert pipeline_slots(8, 64, 3) == pytest.approx(64 + 7 / 3)
    assert pipeline_slots(35, 280, 3) == pytest.approx(280 + 34 / 3)


def test_uneven_stages_put_the_remainder_on_the_first_stages():
    split = stage_layers(126, 16)  # Llama 3 405B: 126 layers on 16 stages
    assert sum(split) == 126 and max(split) == 8 and min(split) == 7
    assert split.count(8) == 14 and split.count(7) == 2
    assert stage_layers(105, 35) == (3,) * 35


@pytest.mark.parametrize(
    "call",
    [
        lambda: stage_layers(3, 4),
        lambda: bubble_fraction(0, 4),
        lambda: pipeline_slots(4, 4, 0),
        lambda: bubble_fraction(1, 4, 2),
    ],
)
def test_impossible_schedules_are_refused(call):
    with pytest.raises(UsageError):
        call()
