"""Collective times at their message size, by hand from the bus-bandwidth curve."""

import pytest

from flopcalc.predict import Curve, Network, collective_s, device_profile
from flopcalc.predict.comm import ring_s

MB = 1e6


def test_an_all_reduce_on_the_a100_profile_by_hand():
    nvlink = device_profile("A100-SXM4-80GB").network("intra_node")
    # 100 MB over 8 GPUs: 2 x 7/8 x 100 MB at 300 GB/s x 0.6 busbw, plus 2 x 7 ring steps of 1 us
    expected = 100 * MB * 2 * 7 / 8 / (300e9 * 0.6) + 14 * 1e-6
    assert collective_s(nvlink, "all_reduce", 100 * MB, 8) == pytest.approx(expected, rel=1e-12)
    # all-gather of the whole 100 MB buffer: 7/8 of it, at 0.4 (Calculon's 1.5x traffic on NVLink), 7 steps
    expected = 100 * MB * 7 / 8 / (300e9 * 0.4) + 7 * 1e-6
    assert collective_s(nvlink, "all_gather", 100 * MB, 8) == pytest.approx(expected, rel=1e-12)


def test_the_bus_bandwidth_is_read_at_the_message_size():
    curve = Curve(((1, 0.2), (100, 0.8)), "a sweep", "log-linear")
    network = Network(
        "inter_node",
        1024,
        50e9,
        5e-6,
        "test",
        {kind: curve for kind in ("all_reduce", "all_gather", "reduce_scatter", "p2p")},
    )
    # 10 MB reads 0.5 of 50 GB/s = 25 GB/s busbw; 4 GPUs: 2 x 3/4 x 10 MB / 25 GB/s + 6 x 5 us
    assert collective_s(network, "all_reduce", 10 * MB, 4) == pytest.approx(15 * MB / 25e9 + 30e-6)
    # 1 MB reads 0.2: a small message runs at a quarter of the large one's rate
    assert collective_s(network, "p2p", 1 * MB, 2) == pytest.approx(1 * MB / 10e9 + 5e-6)
    assert collective_s(network, "all_reduce", 10 * MB, 1) == 0.0


def test_one_ring_formula_prices_every_collective():
    """plan's latency-free links and infer's latency per ring step go through the same formula."""
    # 1000 bytes over 4 GPUs at 100 GB/s busbw: an all-reduce sends 2 x 3/4 of them in 2 x 3 steps of 2 us
    assert ring_s("all_reduce", 1000, 4, 100e9, 2e-6) == pytest.approx(1500 / 100e9 + 6 * 2e-6, rel=1e-15)
    # an all-gather or reduce-scatter sends 3/4 of the whole buffer in 3 steps; without a latency, the bytes alone
    assert ring_s("all_gather", 1000, 4, 100e9, 2e-6) == pytest.approx(750 / 100e9 + 3 * 2e-6, rel=1e-15)
    assert ring_s("reduce_scatter", 1000, 4, 100e9) == pytest.approx(750 / 100e9, rel=1e-15)
    # a point-to-point send: the bytes once and one latency, whatever the group
    assert ring_s("p2p", 500, 1, 100e9, 2e-6) == pytest.approx(500 / 100e9 + 2e-6, rel=1e-15)
    # one GPU sends nothing and waits for no ring step
    assert ring_s("all_reduce", 1000, 1, 100e9, 2e-6) == 0.0
