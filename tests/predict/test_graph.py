"""The step-time prediction of any model: the ops a step records, with their GEMM shapes, and their prices."""

import pytest
import torch
import torch.nn as nn

from flopcalc.calibration import KernelRates
from flopcalc.errors import CalibrationError
from flopcalc.predict import KernelModel, OpCall, predict_ops, trace_ops
from flopcalc.predict.graph import Gemm, op_gemms

# one point each: every size reads the same rate, so every price is exact arithmetic
RATES = KernelRates(matmul=((64, 64, 64, 2.0),), memory=((1 << 20, 10.0),), elementwise=((1 << 16, 0.5),), view_us=3.0,
                    eager_op_us=4.0)


def _training_step(model, x):
    state = {}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def forward():
        state["y"] = model(x)

    def backward():
        state.pop("y").sum().backward()

    def update():
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return trace_ops((("forward", forward), ("backward", backward), ("optimizer", update)), model)


def test_a_linear_records_its_forward_and_both_backward_gemms_at_their_own_shapes():
    model = nn.Sequential(nn.Linear(16, 8))
    calls = _training_step(model, torch.randn(4, 16, requires_grad=True))
    gemms = {(call.phase, gemm) for call in calls for gemm in call.gemms}
    assert gemms == {("forward", Gemm(4, 8, 16)),  # x [4,16] @ W^T [16,8]
                     ("backward", Gemm(4, 16, 8)),  # input gradient: dy [4,8] @ W [8,16]
                     ("backward", Gemm(8, 16, 4))}  # weight gradient: dy^T [8,4] @ x [4,16]
    assert {call.layer for call in calls if call.gemms} == {"Sequential.0"}
    assert {call.phase for call in calls} == {"forward", "backward", "optimizer"}


def test_a_convolution_is_its_implicit_gemm_forward_and_backward():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    calls = _training_step(conv, torch.randn(2, 3, 10, 10, requires_grad=True))
    forward = [g for c in calls if c.phase == "forward" for g in c.gemms]
    backward = [g for c in calls if c.phase == "backward" for g in c.gemms]
    assert forward == [Gemm(2 * 10 * 10, 8, 3 * 9)]  # output positions x out channels, K = in channels x kernel
    assert backward == [Gemm(2 * 10 * 10, 3, 8 * 9), Gemm(8, 3 * 9, 2 * 10 * 10)]  # input and weight gradients
    assert sum(g.flops for g in backward) == 2 * forward[0].flops


def test_a_depthwise_convolution_is_one_small_gemm_per_group():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    out = conv(torch.randn(1, 4, 6, 6))
    args = (torch.randn(1, 4, 6, 6), conv.weight, conv.bias, [1, 1], [1, 1], [1, 1], False, [0, 0], 4)
    assert op_gemms("convolution", args, out) == (Gemm(36, 1, 9, 4),)


def test_batched_products_keep_their_batch():
    a, b = torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    assert op_gemms("bmm", (a, b), a @ b) == (Gemm(4, 6, 5, 3),)
    assert Gemm(4, 6, 5, 3).flops == 2 * 3 * 4 * 6 * 5


def test_prices_are_exact_at_a_one_point_profile():
    model = KernelModel(RATES)
    gemm = OpCall("mm", "forward", "l", (Gemm(64, 64, 64),), bytes=3 * 64 * 64 * 4, elements=64 * 64)
    assert model.price(gemm).seconds == pytest.approx(max(2 * 64**3 / 2e12, 3 * 64 * 64 * 4 / 10e9))
    copy = OpCall("add", "forward", "l", (), bytes=1e6, elements=1e5)
    assert model.price(copy).seconds == pytest.approx(1e6 / 10e9) and model.price(copy).bound == "memory"
    tanh = OpCall("tanh", "forward", "l", (), bytes=8e4, elements=1e4)
    assert model.price(tanh).seconds == pytest.approx(1e4 / 0.5e9) and model.price(tanh).bound == "elementwise"
    view = OpCall("view", "forward", "l", (), 0.0, 0.0, view=True)
    assert model.price(view).seconds == pytest.approx(3e-6)
    tiny = OpCall("add", "forward", "l", (), bytes=8.0, elements=1.0)
    assert model.price(tiny).seconds == pytest.approx(4e-6)  # no op is cheaper than an eager step spends per op
    assert model.price(tiny).bound == "dispatch"
    foreach = OpCall("_foreach_add_", "optimizer", "", (), bytes=2e6, elements=2e5, parts=4)
    assert model.price(foreach).seconds == pytest.approx(4 * 0.5e6 / 10e9)


def test_the_matmul_rate_between_measured_shapes_is_weighted_toward_the_nearest():
    rates = KernelRates(matmul=((64, 64, 64, 1.0), (1024, 64, 64, 4.0)), memory=((1, 1.0),), elementwise=((1, 1.0),),
                        view_us=1.0, eager_op_us=1.0)
    model = KernelModel(rates)
    assert model.matmul_flops_per_s(64, 64, 64) == pytest.approx(1e12)
    assert model.matmul_flops_per_s(1024, 64, 64) == pytest.approx(4e12)
    assert model.matmul_flops_per_s(256, 64, 64) == pytest.approx(2e12)  # halfway in log2: the geometric mean
    assert 1e12 < model.matmul_flops_per_s(128, 64, 64) < 2e12


def test_predict_ops_sums_per_phase_and_per_layer():
    calls = [OpCall("add", "forward", "a", (), 1e6, 1e5), OpCall("add", "backward", "a", (), 2e6, 1e5),
             OpCall("add", "optimizer", "", (), 3e6, 1e5)]
    prediction = predict_ops(calls, RATES, precision="fp32", device_name="cpu")
    assert prediction.seconds == pytest.approx(6e6 / 10e9)
    assert prediction.phase_seconds("backward") == pytest.approx(2e6 / 10e9)
    assert prediction.by_layer() == pytest.approx({"a": 3e6 / 10e9, "": 3e6 / 10e9})


def test_a_profile_without_points_is_refused():
    with pytest.raises(CalibrationError, match="needs matmul, memory and elementwise"):
        KernelModel(KernelRates((), ((1, 1.0),), ((1, 1.0),), 1.0, 1.0))


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="unknown phase"):
        trace_ops((("warmup", lambda: None),))
