"""The step-time prediction of any model: the ops a step records, with their GEMM shapes, and their prices."""

import pytest
import torch
import torch.nn as nn

from flopcalc.calibration import KernelRates
from flopcalc.errors import CalibrationError
from flopcalc.predict import KernelModel, OpCall, predict_ops, trace_ops
from flopcalc.predict.graph import Convolution, Gemm, op_convolution, op_gemms

# one point each: every size reads the same rate, so every price is exact arithmetic
NO_OVERHEAD = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
RATES = KernelRates(
    matmul=((64, 64, 64, 2.0),),
    memory=((1 << 20, 10.0),),
    elementwise=((1 << 16, 0.5),),
    view_us=3.0,
    step_op_us=NO_OVERHEAD,
)
# one dense and one depthwise convolution point: forward, input-gradient and weight-gradient TFLOPS
CONVOLUTIONS = ((64, 64, 64, 1, 1.0, 0.5, 0.25), (64, 1, 9, 32, 0.01, 0.02, 0.04))


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
    assert gemms == {
        ("forward", Gemm(4, 8, 16)),  # x [4,16] @ W^T [16,8]
        ("backward", Gemm(4, 16, 8)),  # input gradient: dy [4,8] @ W [8,16]
        ("backward", Gemm(8, 16, 4)),
    }  # weight gradient: dy^T [8,4] @ x [4,16]
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
    foreach = OpCall("_foreach_add_", "optimizer", "", (), bytes=2e6, elements=2e5, parts=4)
    assert model.price(foreach).seconds == pytest.approx(4 * 0.5e6 / 10e9)


def test_the_matmul_rate_between_measured_shapes_is_weighted_toward_the_nearest():
    rates = KernelRates(
        matmul=((64, 64, 64, 1.0), (1024, 64, 64, 4.0)),
        memory=((1, 1.0),),
        elementwise=((1, 1.0),),
        view_us=1.0,
        step_op_us=NO_OVERHEAD,
    )
    model = KernelModel(rates)
    assert model.matmul_flops_per_s(64, 64, 64) == pytest.approx(1e12)
    assert model.matmul_flops_per_s(1024, 64, 64) == pytest.approx(4e12)
    assert model.matmul_flops_per_s(256, 64, 64) == pytest.approx(2e12)  # halfway in log2: the geometric mean
    assert 1e12 < model.matmul_flops_per_s(128, 64, 64) < 2e12


def test_predict_ops_sums_per_phase_and_per_layer():
    calls = [
        OpCall("add", "forward", "a", (), 1e6, 1e5),
        OpCall("add", "backward", "a", (), 2e6, 1e5),
        OpCall("add", "optimizer", "", (), 3e6, 1e5),
    ]
    prediction = predict_ops(calls, RATES, precision="fp32", device_name="cpu")
    assert prediction.seconds == pytest.approx(6e6 / 10e9)
    assert prediction.phase_seconds("backward") == pytest.approx(2e6 / 10e9)
    assert prediction.by_layer() == pytest.approx({"a": 3e6 / 10e9, "": 3e6 / 10e9})


def test_a_profile_without_points_is_refused():
    with pytest.raises(CalibrationError, match="needs matmul, memory and elementwise"):
        KernelModel(KernelRates((), ((1, 1.0),), ((1, 1.0),), 1.0, NO_OVERHEAD))


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="unknown phase"):
        trace_ops((("warmup", lambda: None),))


def test_every_op_pays_its_phases_overhead_on_top_of_its_kernel():
    rates = KernelRates(
        RATES.matmul, RATES.memory, RATES.elementwise, 3.0, {"forward": 4.0, "backward": 2.0, "optimizer": 1.0}
    )
    model = KernelModel(rates)
    tiny = OpCall("add", "forward", "l", (), bytes=8.0, elements=1.0)
    # a kernel is at least one dispatch (the view's 3 us), then the phase's 4 us on top
    assert model.price(tiny).seconds == pytest.approx(3e-6 + 4e-6) and model.price(tiny).bound == "dispatch"
    copy = OpCall("add", "backward", "l", (), bytes=1e6, elements=1e5)
    assert model.price(copy).seconds == pytest.approx(1e6 / 10e9 + 2e-6) and model.price(copy).bound == "memory"
    foreach = OpCall("_foreach_add_", "optimizer", "", (), bytes=2e6, elements=2e5, parts=4)
    assert model.price(foreach).seconds == pytest.approx(4 * 0.5e6 / 10e9 + 4 * 1e-6)
    view = OpCall("view", "forward", "l", (), 0.0, 0.0, view=True)
    assert model.price(view).seconds == pytest.approx(3e-6)  # a view is one dispatch, no kernel


def test_convolutions_record_the_shape_and_passes_they_run():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    calls = _training_step(conv, torch.randn(2, 3, 10, 10, requires_grad=True))
    shapes = [(c.phase, c.convolution) for c in calls if c.convolution is not None]
    assert shapes == [
        ("forward", Convolution(200, 8, 27, 1, False, ("forward",))),
        ("backward", Convolution(200, 8, 27, 1, False, ("input_grad", "weight_grad"))),
    ]
    stem = _training_step(conv, torch.randn(2, 3, 10, 10))  # an input without a gradient: the weight's alone
    assert [c.convolution.passes for c in stem if c.convolution is not None] == [("forward",), ("weight_grad",)]
    depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    out = depthwise(torch.randn(1, 4, 6, 6))
    args = (torch.randn(1, 4, 6, 6), depthwise.weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 4)
    assert op_convolution("convolution", args, out) == Convolution(36, 1, 9, 4, True, ("forward",))
    transposed = args[:6] + (True,) + args[7:]
    assert op_convolution("convolution", transposed, out) is None  # priced as its GEMMs


def test_a_convolution_is_priced_at_the_measured_convolution_rates_of_its_passes():
    rates = KernelRates(RATES.matmul, ((1, 1e9),), RATES.elementwise, 3.0, NO_OVERHEAD, CONVOLUTIONS)
    model = KernelModel(rates)
    dense = Convolution(64, 64, 64, 1, False, ("input_grad", "weight_grad"))
    call = OpCall(
        "convolution_backward", "backward", "c", (Gemm(64, 64, 64), Gemm(64, 64, 64)), 8.0, 1.0, convolution=dense
    )
    flops = 2 * 64**3
    assert model.price(call).seconds == pytest.approx(flops / 0.5e12 + flops / 0.25e12)
    assert model.price(call).bound == "convolution"
    depthwise = Convolution(64, 1, 9, 32, True, ("forward",))
    call = OpCall("convolution", "forward", "c", (Gemm(64, 1, 9, 32),), 8.0, 1.0, convolution=depthwise)
    assert model.price(call).seconds == pytest.approx(2 * 64 * 9 * 32 / 0.01e12)  # among the depthwise points
    large = Convolution(65536, 1, 9, 32, True, ("forward",))
    call = OpCall("convolution", "forward", "c", (Gemm(65536, 1, 9, 32),), 8.0, 1.0, convolution=large)
    without = KernelModel(RATES)  # no convolution measured: the implicit GEMM at the matmul rate
    assert without.price(call).seconds == pytest.approx(2 * 32 * 65536 * 9 / 2e12)
    assert without.price(call).bound == "matmul"


def test_an_op_the_profile_timed_on_its_own_runs_at_its_rate_for_its_largest_tensor():
    # batch norm measured at 0.1 G elements/s on 1 Mi elements and 0.4 on 4 Mi (log-linear between)
    rates = KernelRates(
        RATES.matmul,
        RATES.memory,
        RATES.elementwise,
        3.0,
        NO_OVERHEAD,
        op_rates={"native_batch_norm": ((1 << 20, 0.1), (1 << 22, 0.4)), "sqrt": ((1 << 10, 2.0),)},
    )
    model = KernelModel(rates)
    norm = OpCall("native_batch_norm", "forward", "l", (), bytes=8 * (1 << 21), elements=1 << 21, largest=1 << 21)
    # halfway in log2 between 1 Mi and 4 Mi: 0.25 G/s; 2 Mi elements / 0.25e9 = 8.39 ms (bytes: 1.68 ms)
    assert model.price(norm).seconds == pytest.approx((1 << 21) / 0.25e9) and model.price(norm).bound == "op rate"
    # an in-place variant reads the plain op's rate; two parts each at their own size
    sqrt = OpCall("sqrt_", "optimizer", "", (), bytes=8e3, elements=2e6, parts=2, largest=2e6)
    assert model.price(sqrt).seconds == pytest.approx(2 * 1e6 / 2e9)
    # when the bytes take longer than the measured rate says, the bytes win (a roofline per op)
    streamed = OpCall("sqrt", "optimizer", "", (), bytes=1e8, elements=1e3, largest=1e3)
    assert model.price(streamed).seconds == pytest.approx(1e8 / 10e9) and model.price(streamed).bound == "memory"
    # a profile without op rates (saved before they were measured) prices the op by its bytes, as before
    assert KernelModel(RATES).price(norm).seconds == pytest.approx(8 * (1 << 21) / 10e9)


def test_every_op_records_the_elements_of_its_largest_tensor():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2))
    calls = _training_step(model, torch.randn(2, 3, 8, 8))
    largest = {call.name: call.largest for call in calls if not call.view}
    assert largest["native_batch_norm"] == 2 * 4 * 8 * 8
    assert largest["max_pool2d_with_indices"] == 2 * 4 * 8 * 8  # its input, not its 4x smaller output
    assert largest["max_pool2d_with_indices_backward"] == 2 * 4 * 8 * 8
