"""compute.with_teacher: a distillation teacher's forward added per example, every epoch or once (cached logits),
in exact arithmetic."""

from fractions import Fraction

import pytest

from flopcalc.compute import training_from_counts, with_teacher
from flopcalc.errors import UsageError


def test_live_logits_run_the_teacher_every_epoch():
    student = training_from_counts(Fraction(10, 3), Fraction(20, 3), 300, 4)
    taught = with_teacher(student, Fraction(7, 3))
    assert taught.training_flops == 10 * 300 * 4 + 7 * 100 * 4  # 10/3 + 20/3 and 7/3 per example, exactly
    assert taught.flops_per_example == 10  # the student's step, as without a teacher
    assert taught.to_dict()["teacher"] == {"forward_flops_per_example": 7 / 3, "passes": 4.0, "flops": 2800.0}


def test_cached_logits_run_the_teacher_once():
    taught = with_teacher(training_from_counts(1, 2, 1000, 10), 5, cached_logits=True)
    assert taught.training_flops == 3 * 1000 * 10 + 5 * 1000
    assert "logits cached" in taught.notes[-1]


def test_no_teacher_adds_no_key_and_a_bad_one_is_refused():
    assert "teacher" not in training_from_counts(1, 2, 10).to_dict()
    with pytest.raises(UsageError):
        with_teacher(training_from_counts(1, 2, 10), 0)
