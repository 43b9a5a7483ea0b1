"""flopcalc.infer.steps: G decode steps summed in closed form equal the steps summed one by one."""

import pytest

from flopcalc.errors import ModelRunError
from flopcalc.infer import LayerBound, PassBound, sum_of_max
from flopcalc.infer.steps import midpoint, steps_time


def test_sum_of_max_is_the_sum_of_each_steps_bound():
    for c_first, c_last, m_first, m_last, steps in [
        (1, 9, 5, 6, 11),
        (9, 1, 5, 6, 11),
        (3, 3, 1, 7, 4),
        (2, 2, 2, 2, 3),
        (0, 10, 10, 0, 2),
        (4, 8, 1, 2, 1),
    ]:
        c = [c_first + (c_last - c_first) * i / max(steps - 1, 1) for i in range(steps)]
        m = [m_first + (m_last - m_first) * i / max(steps - 1, 1) for i in range(steps)]
        compute, memory = sum_of_max(c_first, c_last, m_first, m_last, steps)
        assert compute == pytest.approx(sum(x for x, y in zip(c, m) if x >= y))
        assert memory == pytest.approx(sum(y for x, y in zip(c, m) if y > x))


def layer(name, flops, memory_s, compute_s):
    return LayerBound(name, "Linear", flops, 0.0, 0.0, 0.0, 0.0, compute_s, memory_s)


def test_steps_time_sums_each_layer_on_its_own_and_the_midpoint_is_the_mean_step():
    first = PassBound((layer("a", 10, 4.0, 1.0), layer("b", 20, 1.0, 2.0)))
    last = PassBound((layer("a", 30, 6.0, 3.0), layer("b", 40, 1.0, 4.0)))
    # a: memory-bound at every step (4, 5, 6); b: compute-bound (2, 3, 4)
    assert steps_time(first, last, 3) == (2.0 + 3.0 + 4.0, 4.0 + 5.0 + 6.0)
    mean = midpoint(first, last)
    assert [(x.flops, x.memory_s, x.compute_s) for x in mean.layers] == [(20, 5.0, 2.0), (30, 1.0, 3.0)]


def test_steps_that_ran_different_layers_are_refused():
    with pytest.raises(ModelRunError, match="ran different layers"):
        steps_time(PassBound((layer("a", 1, 1.0, 1.0),)), PassBound((layer("b", 1, 1.0, 1.0),)), 2)
