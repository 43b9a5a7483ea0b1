"""A device profile: the rates a step-time prediction reads at each op's own size (docs/calibration.md).

One headline matmul figure prices a 64 x 128 x 784 GEMM like an 8192-cube; a profile instead times a ladder of
GEMM shapes (skinny and small ones included), convolutions (dense and depthwise, forward and both gradients:
a convolution with few output positions runs far below the GEMM of its shape), a streaming copy at sizes from
cache-resident to far past the caches (achievable memory bandwidth), an elementwise op at several sizes, an op
that moves nothing (what dispatching one op costs), and a tiny network's training step (what each phase spends
per op beyond its kernels). Each point is the median of a few samples of a block of calls.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..calibration import Calibration, measured_profile, now_utc
from ..device import STEP_PHASES, KernelRates, ProfileCalibration
from ..predict import KernelModel, trace_ops
from .hardware import DeviceInfo
from .sweep import Timer, fp32_matmul_mode, timer_for

PROFILE_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")  # the ones a model's training step runs in
SAMPLES = 5


@dataclass(frozen=True)
class Ladder:
    """The sizes one device is profiled at."""

    gemm_m: tuple[int, ...]
    gemm_nk: tuple[int, ...]
    max_gemm_flops: float  # shapes above this are left out (they take too long on this device)
    copy_bytes: tuple[int, ...]
    elementwise: tuple[int, ...]
    sample_seconds: float  # one sample's target duration
    conv_inputs: tuple[tuple[int, int], ...] = ()  # (batch, side) of the square inputs convolutions are timed on
    conv_channels: tuple[int, ...] = ()  # dense: in = out channels, 1x1 and 3x3; also a 3-channel (RGB) stem
    depthwise_channels: tuple[int, ...] = ()  # 3x3 depthwise
    max_conv_flops: float = 0.0  # a forward above this is left out
    op_rate_elements: tuple[int, ...] = ()  # activation sizes op_rate_probe runs at (none: no op rates)

    @staticmethod
    def for_device(device: str) -> Ladder:
        if device == "cpu":
            return Ladder(
                (8, 64, 512, 4096),
                (8, 64, 512, 2048),
                1.1e9,
                (2**12, 2**16, 2**20, 2**24, 2**27),
                (2**10, 2**14, 2**18, 2**22),
                0.01,
                ((2, 2), (4, 4), (8, 8), (16, 16), (32, 32)),
                (16, 64, 256, 1024),
                (16, 64, 256),
                6e8,
                (2**10, 2**14, 2**18, 2**22),
            )
        return Ladder(
            (16, 256, 4096, 32768),
            (256, 2048, 16384),
            1.2e13,
            (2**16, 2**20, 2**24, 2**28, 2**31),
            (2**12, 2**16, 2**20, 2**24, 2**28),
            0.005,
            ((32, 7), (32, 14), (32, 28), (32, 56)),
            (64, 256, 1024),
            (64, 256, 1024),
            4e11,
        )

    def conv_shapes(self) -> list[tuple[int, int, int, int, int, int]]:
        """(batch, side, in channels, out channels, kernel, groups), the least work first."""
        shapes = []
        for batch, side in self.conv_inputs:
            for channels in self.conv_channels:
                shapes += [(batch, side, channels, channels, kernel, 1) for kernel in (1, 3)]
            shapes += [(batch, side, 3, channels, 3, 1) for channels in self.conv_channels[:2]]
            shapes += [(batch, side, channels, channels, 3, channels) for channels in self.depthwise_channels]
        return sorted(
            (shape for shape in shapes if _conv_flops(*shape) <= self.max_conv_flops),
            key=lambda shape: _conv_flops(*shape),
        )

    def gemm_shapes(self) -> list[tuple[int, int, int]]:
        """Smallest first: a run out of time keeps the small shapes, which no headline figure stands for."""
        shapes = [
            (m, n, k)
            for m in self.gemm_m
            for n in self.gemm_nk
            for k in self.gemm_nk
            if 2.0 * m * n * k <= self.max_gemm_flops
        ]
        return sorted(shapes, key=lambda shape: shape[0] * shape[1] * shape[2])


# the ladder `bench MODEL` measures on a CPU when no profile was saved
QUICK_LADDER = Ladder(
    (8, 128, 2048),
    (8, 64, 512),
    5e8,
    (2**12, 2**18, 2**24),
    (2**10, 2**16, 2**22),
    0.004,
    ((2, 2), (8, 8), (32, 32)),
    (16, 128, 1024),
    (32, 256),
    3e8,
    (2**10, 2**14, 2**18),
)


def _conv_flops(batch: int, side: int, cin: int, cout: int, kernel: int, groups: int) -> float:
    """A same-padded stride-1 convolution's forward FLOPs."""
    return 2.0 * batch * side * side * cout * (cin // groups) * kernel * kernel


def seconds_per_call(fn: Callable[[], object], timer: Timer, target: float) -> float:
    """The median of SAMPLES blocks' time per call, each block about `target` seconds long: the median, as the
    model bench takes of its steps, so a prediction and the measurement it is compared with stand alike."""
    fn()  # warm (allocations, kernel selection)
    calls = 1
    elapsed = timer(fn, calls)
    while elapsed < target / 4 and calls < 1 << 20:
        calls *= 4
        elapsed = timer(fn, calls)
    calls = max(1, int(calls * target / max(elapsed, 1e-9)))
    return statistics.median(timer(fn, calls) / calls for _ in range(SAMPLES))


def _dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def measure_rates(
    info: DeviceInfo,
    precision: str,
    *,
    ladder: Ladder | None = None,
    seconds: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    convolutions: bool = True,
) -> KernelRates:
    """Time the ladder in `precision` on the device `info` describes, by `clock` (off a GPU, the kernels too).
    With `seconds`, GEMM shapes left when half of it has gone are not timed, nor convolutions left after the next
    quarter, nor op-rate sizes after the last (the smallest always is; the copy, elementwise, dispatch and step
    points always are). `convolutions`: time the ladder's
    convolutions too (without them a prediction prices convolutions as their GEMMs)."""
    import torch

    ladder = ladder or Ladder.for_device(info.device)
    timer = timer_for(info.device, clock)
    dtype, device = _dtype(precision), info.device
    target = ladder.sample_seconds
    matmul = []
    gemm_end = clock() + seconds / 2 if seconds else None
    with fp32_matmul_mode(precision, device):
        for m, n, k in ladder.gemm_shapes():
            if matmul and gemm_end is not None and clock() > gemm_end:
                break
            a = torch.randn(m, k, device=device).to(dtype)
            b = torch.randn(k, n, device=device).to(dtype)
            call_s = seconds_per_call(lambda: torch.mm(a, b), timer, target)  # noqa: B023 (called at once)
            matmul.append((m, n, k, 2.0 * m * n * k / call_s / 1e12))
    memory = []
    for moved in ladder.copy_bytes:  # a copy reads and writes: half the bytes moved each way
        elements = max(1, moved // 2 // torch.empty((), dtype=dtype).element_size())
        source, destination = (
            torch.randn(elements, device=device).to(dtype),
            torch.empty(elements, dtype=dtype, device=device),
        )
        call_s = seconds_per_call(lambda: destination.copy_(source), timer, target)  # noqa: B023 (called at once)
        memory.append((moved, moved / call_s / 1e9))
        source = destination = None  # freed before the next, larger pair
    elementwise = []
    for elements in ladder.elementwise:
        x = torch.randn(elements, device=device).to(dtype)
        call_s = seconds_per_call(lambda: torch.tanh(x), timer, target)  # noqa: B023 (called at once)
        elementwise.append((elements, elements / call_s / 1e9))
    x = torch.randn(4, 4, device=device).to(dtype)
    view_s = seconds_per_call(lambda: x.view(16), timer, target)
    conv_end = clock() + seconds / 4 if seconds else None  # convolutions: the next quarter of the budget
    convolution = (
        measure_convolutions(ladder, device, dtype, timer, target, lambda: conv_end is not None and clock() > conv_end)
        if convolutions
        else ()
    )
    budget_end = conv_end + seconds / 4 if conv_end is not None and seconds else None  # op rates: the last quarter
    op_rates = measure_op_rates(
        ladder.op_rate_elements,
        device,
        dtype,
        clock,
        synchronizer(device),
        lambda: budget_end is not None and clock() > budget_end,
    )
    kernels = KernelRates(
        tuple(matmul),
        tuple(memory),
        tuple(elementwise),
        view_s * 1e6,
        dict.fromkeys(STEP_PHASES, 0.0),
        tuple(convolution),
        op_rates,
    )
    overhead = step_overhead_us(kernels, device, dtype, clock, synchronizer(device), target)
    return replace(kernels, step_op_us=overhead)


def measure_convolutions(
    ladder: Ladder,
    device: str,
    dtype,
    timer: Timer,
    target: float,
    out_of_time: Callable[[], bool] = lambda: False,
) -> list[tuple[int, int, int, int, float, float, float]]:
    """Each ladder convolution's forward, input-gradient and weight-gradient TFLOPS, keyed by its forward's
    implicit GEMM per group (positions, out channels, in channels x kernel) and groups; the least work first,
    until `out_of_time`."""
    import torch

    points: list[tuple[int, int, int, int, float, float, float]] = []
    for batch, side, cin, cout, kernel, groups in ladder.conv_shapes():
        if points and out_of_time():
            break
        source = torch.randn(batch, cin, side, side, device=device).to(dtype)
        weight = torch.randn(cout, cin // groups, kernel, kernel, device=device).to(dtype)
        grad = torch.randn(batch, cout, side, side, device=device).to(dtype)
        padding = [kernel // 2] * 2
        backward = (grad, source, weight, None, [1, 1], padding, [1, 1], False, [0, 0], groups)
        forward = (source, weight, None, [1, 1], padding, [1, 1], False, [0, 0], groups)
        calls = (
            lambda args=forward: torch.ops.aten.convolution(*args),
            lambda args=backward: torch.ops.aten.convolution_backward(*args, [True, False, False]),
            lambda args=backward: torch.ops.aten.convolution_backward(*args, [False, True, False]),
        )
        seconds = [seconds_per_call(call, timer, target) for call in calls]
        flops = _conv_flops(batch, side, cin, cout, kernel, groups)
        points.append(
            (
                batch * side * side,
                cout // groups,
                cin // groups * kernel * kernel,
                groups,
                *(flops / s / 1e12 for s in seconds),
            )
        )
    return points


def step_overhead_us(
    kernels: KernelRates, device: str, dtype, clock: Callable[[], float], sync: Callable[[], None], target: float
) -> dict[str, float]:
    """What an eager training step spends per op beyond its kernel, per phase: a tiny network (4 blocks of
    Linear 8 -> 8, LayerNorm, GELU; AdamW) whose kernels are all but free, timed phase by phase, less its ops'
    kernel times at `kernels`' rates, over its ops. Module calls, autograd and the optimizer's loop are what
    is left, and every op of a real step pays them too."""
    import torch

    torch.manual_seed(0)
    layers = [layer for _ in range(4) for layer in (torch.nn.Linear(8, 8), torch.nn.LayerNorm(8), torch.nn.GELU())]
    network = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
    inputs = torch.randn(2, 8, device=device).to(dtype)
    optimizer = torch.optim.AdamW(network.parameters())
    state: dict[str, object] = {}

    def forward() -> None:
        state["loss"] = network(inputs).float().sum()

    def backward() -> None:
        state.pop("loss").backward()  # type: ignore[attr-defined]

    def update() -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    phases = dict(zip(STEP_PHASES, (forward, backward, update)))
    for _ in range(3):
        for run in phases.values():
            run()
    calls = trace_ops(tuple(phases.items()), network)
    times: dict[str, list[float]] = {phase: [] for phase in phases}
    end = clock() + 20 * target
    while clock() < end or len(times["forward"]) < 20:
        for phase, run in phases.items():
            sync()
            start = clock()
            run()
            sync()
            times[phase].append(clock() - start)
    model = KernelModel(kernels)
    overhead = {}
    for phase in phases:
        ops = [call for call in calls if call.phase == phase]
        kernel_s = sum(model.view_s if call.view else model.kernel(call).seconds for call in ops)
        counted = sum(call.parts for call in ops if not call.view) or 1
        overhead[phase] = max(0.0, (statistics.median(times[phase]) - kernel_s) / counted) * 1e6
    return overhead


def synchronizer(device: str) -> Callable[[], None]:
    """What waits for the device's queued work (a no-op on CPU)."""
    import torch

    if device == "cuda":
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


def measure_profile(
    info: DeviceInfo,
    precisions: tuple[str, ...],
    *,
    ladder: Ladder | None = None,
    seconds: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ProfileCalibration:
    """A profile of every precision in `precisions` a model's step can run in (fp8/int8 are left out), each
    in an equal share of `seconds`."""
    import torch

    previous_threads = torch.get_num_threads()
    if info.device == "cpu" and info.threads:
        torch.set_num_threads(info.threads)
    try:
        chosen = [precision for precision in precisions if precision in PROFILE_PRECISIONS]
        share = seconds / len(chosen) if seconds and chosen else None
        rates = {
            precision: measure_rates(info, precision, ladder=ladder, seconds=share, clock=clock) for precision in chosen
        }
    finally:
        torch.set_num_threads(previous_threads)
    return ProfileCalibration(info.device_name, now_utc(), info.torch_version, rates, info.threads)


OP_RATE_REPEATS = 5


def op_rate_probe(elements: int, device: str, dtype) -> Callable[[], None]:
    """One forward and backward of the ops a training step runs that no copy or GEMM stands for, on a
    (4, 16, s, s) activation of `elements` elements: batch norm (training), ReLU, 2x2 max pooling, GELU, SiLU,
    tanh, a square, softmax, layer norm, an RMS norm's mean and rsqrt, dropout and sums; then an AdamW-style
    update's ops on flat tensors of as many elements (sqrt, div, addcmul_, addcdiv_, lerp_, mul_, add_)."""
    import torch
    import torch.nn.functional as F

    side = max(1, round((elements / 64) ** 0.5))
    shape = (4, 16, side, side)
    x = torch.randn(shape, device=device).to(dtype).requires_grad_(True)
    norm_weight = torch.ones(16, device=device, dtype=dtype, requires_grad=True)
    norm_bias = torch.zeros(16, device=device, dtype=dtype, requires_grad=True)
    running = (torch.zeros(16, device=device, dtype=dtype), torch.ones(16, device=device, dtype=dtype))
    flat = [torch.rand(x.numel(), device=device).to(dtype) + 1 for _ in range(3)]

    def run() -> None:
        y = F.relu(F.batch_norm(x, *running, norm_weight, norm_bias, training=True))
        terms = [
            F.max_pool2d(y, 2).sum(),
            F.gelu(y).sum(),
            F.silu(y).sum(),
            torch.tanh(y).sum(),
            torch.softmax(y, -1).sum(),
            F.layer_norm(y, (side,)).sum(),
            (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)).sum(),
            F.dropout(y, 0.1, training=True).sum(),
        ]
        torch.stack(terms).sum().backward()
        with torch.no_grad():
            a, b, c = flat
            denominator = torch.sqrt(b).add_(1e-8)
            a.addcdiv_(c, denominator, value=-1e-3)
            b.mul_(0.999).addcmul_(c, c, value=1e-3)
            c.lerp_(a, 0.1)
            torch.div(a, denominator)
        x.grad = norm_weight.grad = norm_bias.grad = None

    return run


def measure_op_rates(
    sizes: tuple[int, ...],
    device: str,
    dtype,
    clock: Callable[[], float],
    sync: Callable[[], None],
    out_of_time: Callable[[], bool] = lambda: False,
) -> dict[str, tuple[tuple[int, float], ...]]:
    """Each op of `op_rate_probe` timed one call at a time by `clock` (the device synchronised around it), at
    every size in `sizes` (the smallest first; once `out_of_time`, the larger ones are left out): G elements/s
    of its largest tensor, per op name (an in-place variant, `mul_`, under its own: it allocates nothing),
    keyed by that tensor's elements. Views, GEMMs and convolutions are left out: they have their own figures.
    The median of OP_RATE_REPEATS runs of each call."""
    from ..predict import time_ops

    rates: dict[str, list[tuple[int, float]]] = {}
    measured = 0
    for elements in sizes:
        if measured and out_of_time():
            break
        measured += 1
        probe = op_rate_probe(elements, device, dtype)
        probe()  # warm
        runs = [time_ops(probe, clock, sync) for _ in range(OP_RATE_REPEATS)]
        totals: dict[str, list[float]] = {}  # name -> [largest tensors' elements, seconds, calls]
        for index, (call, _) in enumerate(runs[0]):
            if call.view or call.gemms or call.convolution is not None or call.largest <= 0:
                continue
            entry = totals.setdefault(call.name, [0.0, 0.0, 0.0])
            entry[0] += call.largest
            entry[1] += statistics.median(run[index][1] for run in runs)
            entry[2] += 1
        for name, (largest, seconds, calls) in totals.items():
            if (largest / calls) ** 2 >= elements:
                rates.setdefault(name, []).append((round(largest / calls), largest / max(seconds, 1e-9) / 1e9))
    # an op whose largest tensor does not grow with the activation (the loss's ones_like, a stack of scalars:
    # under the square root of its elements; an RMS norm's rsqrt, one per row, is above) is not an op whose
    # rate these sizes measure: left out at every size, priced by its bytes
    return {
        name: tuple(sorted(points))
        for name, points in sorted(rates.items())
        if len({size for size, _ in points}) == measured
    }


def profile_rates(
    calibration: Calibration | None,
    info: DeviceInfo,
    precision: str,
    notes: list[str],
    clock: Callable[[], float] = time.perf_counter,
    convolutions: bool = True,
) -> tuple[KernelRates, str]:
    """The saved profile's rates of this device and precision, else a quick profile measured now (said which;
    its convolution ladder only when the step runs convolutions)."""
    profile = measured_profile(calibration, info.device_name) if calibration is not None else None
    if profile is not None and precision in profile.precisions:
        where = f" in {calibration.path}" if calibration.path else ""
        if not profile.precisions[precision].op_rates and info.device == "cpu":
            notes.append(
                "the saved profile has no op_rates (saved before they were measured): batch norm, pooling, softmax "
                "and the optimizer's sqrt and div are priced by their bytes; rerun `flopcalc bench --save`"
            )
        return profile.precisions[precision], f"saved profile{where} (measured {profile.measured_at[:10]})"
    if profile is not None:
        notes.append(f"the saved profile has no {precision} rates: predicted from a quick profile measured now")
    ladder = QUICK_LADDER if info.device == "cpu" else None
    return (
        measure_rates(info, precision, ladder=ladder, clock=clock, convolutions=convolutions),
        "quick profile measured in this run (no saved profile)",
    )
