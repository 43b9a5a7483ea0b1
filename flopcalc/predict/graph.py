"""A step-time prediction for any model: every op the step runs, priced by a measured profile at its own shape.

The transformer model (`step`) knows a layer's GEMMs from its dimensions; an arbitrary model does not have
them, so the ops are recorded as torch dispatches them (forward, backward and optimizer), with their shapes:
- convolutions at the convolution rates measured nearest their implicit GEMM (M = output positions, N = output
  channels, K = input channels x kernel, per group), each pass (forward, input and weight gradient) at its own;
- GEMMs (mm, addmm, bmm, baddbmm), convolutions a profile has no points for (as their implicit GEMMs; backward:
  input and weight gradients at their own shapes) and fused attention (its products) run at the matmul rate
  measured nearest their (M, N, K);
- an op the profile timed on its own (batch norm, pooling, softmax, the optimizer's sqrt and div...: ops
  neither their bytes nor one elementwise rate price) at its measured rate for its largest tensor;
- every other op moves its inputs and outputs: the bytes over the bandwidth a copy of that size achieved;
  transcendental elementwise ops at least the measured elementwise rate; views cost one dispatch.
In eager mode every op is its own kernel that reads its inputs and writes its outputs, so the bytes are each
op's own tensors: `counting/traffic.py` prices a fused layer (a serving bound), which eager training is not.
A kernel's time is the slower of its arithmetic and its memory time (a roofline per op, at measured rates);
every op then pays what an eager step of its phase measurably spends per op beyond its kernel (module calls,
autograd, the optimizer's loop).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..device import STEP_PHASES, Curve, KernelRates
from ..errors import CalibrationError

PHASES = STEP_PHASES
_GEMMS = frozenset({"mm", "addmm", "bmm", "baddbmm", "_int_mm", "_scaled_mm"})
_TRANSCENDENTAL = frozenset(
    {
        "tanh",
        "exp",
        "log",
        "sigmoid",
        "gelu",
        "gelu_backward",
        "erf",
        "silu",
        "silu_backward",
        "_softmax",
        "_log_softmax",
        "_softmax_backward_data",
        "_log_softmax_backward_data",
        "tanh_backward",
        "sigmoid_backward",
        "pow",
        "sin",
        "cos",
        "_foreach_pow",
    }
)
_NEAREST = 4  # matmul points an interpolation weighs


@dataclass(frozen=True)
class Gemm:
    """`batch` independent M x K @ K x N products."""

    m: int
    n: int
    k: int
    batch: int = 1

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.n * self.k


@dataclass(frozen=True)
class Convolution:
    """A convolution as the profile's convolution points are keyed: its forward's implicit GEMM per group
    (m output positions, n output channels, k input channels x kernel), the groups, whether it is depthwise
    (one input channel per group), and which passes the op runs (forward; input_grad and/or weight_grad)."""

    m: int
    n: int
    k: int
    groups: int
    depthwise: bool
    passes: tuple[str, ...]

    @property
    def flops(self) -> float:
        """One pass's FLOPs: the forward, the input gradient and the weight gradient each do this much."""
        return 2.0 * self.m * self.n * self.k * self.groups


CONVOLUTION_PASSES = ("forward", "input_grad", "weight_grad")  # the order of a convolution point's rates


@dataclass(frozen=True)
class OpCall:
    """One op the step ran: its name, phase, innermost module, GEMMs (if any), bytes moved, elements written,
    `parts`: how many kernels it is (a `_foreach_` op runs one per tensor), a convolution's shape, and the
    elements of the largest tensor it reads or writes (what a measured op rate is keyed by)."""

    name: str
    phase: str
    layer: str
    gemms: tuple[Gemm, ...]
    bytes: float
    elements: float
    view: bool = False
    parts: int = 1
    convolution: Convolution | None = None
    largest: float = 0.0


@dataclass(frozen=True)
class OpTime:
    call: OpCall
    seconds: float
    bound: str  # matmul | memory | elementwise | dispatch


@dataclass(frozen=True)
class GraphPrediction:
    """The predicted time of every op of one step, summed per phase and per layer."""

    ops: tuple[OpTime, ...]
    precision: str
    device_name: str

    @property
    def seconds(self) -> float:
        return sum(op.seconds for op in self.ops)

    def phase_seconds(self, phase: str) -> float:
        return sum(op.seconds for op in self.ops if op.call.phase == phase)

    def by_layer(self) -> dict[str, float]:
        """Seconds per innermost module ("" for ops outside any module, such as the optimizer's), in the
        order the layers first ran."""
        totals: dict[str, float] = defaultdict(float)
        for op in self.ops:
            totals[op.call.layer] += op.seconds
        return dict(totals)

    def by_bound(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for op in self.ops:
            totals[op.bound] += op.seconds
        return dict(totals)


# --------------------------------------------------------------------------------------------- pricing


class KernelModel:
    """A precision's measured rates, read at any size: matmul by (M, N, K) and convolutions by their implicit
    GEMM (a weighted geometric mean of the nearest measured shapes, distances in log2 of each dimension), copy
    bandwidth and elementwise rate by size (log-linear between the measured sizes, the nearest end's value
    beyond them)."""

    def __init__(self, rates: KernelRates, source: str = "measured by flopcalc bench"):
        if not rates.matmul or not rates.memory or not rates.elementwise:
            raise CalibrationError("a device profile needs matmul, memory and elementwise points")
        self.rates = rates
        self._gemm_points = [
            (math.log2(m), math.log2(n), math.log2(k), math.log(tflops * 1e12)) for m, n, k, tflops in rates.matmul
        ]
        # per pass: dense points keyed (m, n, k); depthwise points keyed (m, channels, k)
        self._dense = {
            p: [
                (math.log2(m), math.log2(n), math.log2(k), math.log(point[4 + i] * 1e12))
                for point in rates.convolution
                for m, n, k, groups in [point[:4]]
                if groups == 1
            ]
            for i, p in enumerate(CONVOLUTION_PASSES)
        }
        self._depthwise = {
            p: [
                (math.log2(m), math.log2(groups), math.log2(k), math.log(point[4 + i] * 1e12))
                for point in rates.convolution
                for m, n, k, groups in [point[:4]]
                if groups > 1
            ]
            for i, p in enumerate(CONVOLUTION_PASSES)
        }
        self.op_overhead_s = {phase: rates.step_op_us.get(phase, 0.0) * 1e-6 for phase in PHASES}
        self._bandwidth = Curve(
            tuple((float(size), rate * 1e9) for size, rate in sorted(rates.memory)), source, "log-linear"
        )
        self._elementwise = Curve(
            tuple((float(size), rate * 1e9) for size, rate in sorted(rates.elementwise)), source, "log-linear"
        )
        self.view_s = rates.view_us * 1e-6
        self._op_rates = {
            name: Curve(tuple((float(size), rate * 1e9) for size, rate in sorted(points)), source, "log-linear")
            for name, points in rates.op_rates.items()
        }

    def matmul_flops_per_s(self, m: float, n: float, k: float) -> float:
        return _nearest_rate(self._gemm_points, (m, n, k))

    def convolution_s(self, convolution: Convolution) -> float | None:
        """The convolution's passes at the rates measured for convolutions nearest its shape (a depthwise one
        among the depthwise points, keyed by positions, channels and kernel); None when the profile has no
        convolution points of its kind. A grouped convolution that is not depthwise runs as `groups` dense
        ones of its per-group shape."""
        family = self._depthwise if convolution.depthwise else self._dense
        if not all(family[p] for p in convolution.passes):
            return None
        shape = (
            (convolution.m, convolution.groups, convolution.k)
            if convolution.depthwise
            else (convolution.m, convolution.n, convolution.k)
        )
        return sum(convolution.flops / _nearest_rate(family[p], shape) for p in convolution.passes)

    def memory_s(self, nbytes: float) -> float:
        """A copy-like op moving `nbytes` (at least one dispatch)."""
        return max(nbytes / self._bandwidth.at(nbytes), self.view_s) if nbytes > 0 else self.view_s

    def elementwise_s(self, elements: float) -> float:
        return elements / self._elementwise.at(elements) if elements > 0 else self.view_s

    def gemm_s(self, gemm: Gemm) -> float:
        """Batched products run as one kernel of the stacked rows: read at (batch x M, N, K)."""
        return gemm.flops / self.matmul_flops_per_s(gemm.batch * gemm.m, gemm.n, gemm.k)

    def price(self, call: OpCall) -> OpTime:
        """The op's roofline time at measured rates plus what an eager step of its phase spends per op beyond
        the kernel (bound "dispatch" when that is the larger part); a view costs one dispatch."""
        if call.view:
            return OpTime(call, self.view_s, "dispatch")
        timed = self.kernel(call)
        overhead = self.op_overhead_s.get(call.phase, 0.0) * call.parts
        return OpTime(call, timed.seconds + overhead, timed.bound if timed.seconds >= overhead else "dispatch")

    def kernel(self, call: OpCall) -> OpTime:
        """The op's kernel time: the slower of its arithmetic and its memory time at measured rates; an op the
        profile measured on its own (`op_rates`: batch norm, pooling, softmax, the optimizer's sqrt and div...)
        runs at its rate for its largest tensor's elements (an in-place variant the profile did not time, at the
        plain op's)."""
        memory = sum(self.memory_s(call.bytes / call.parts) for _ in range(call.parts))
        if call.convolution is not None:
            compute = self.convolution_s(call.convolution)
            if compute is not None:
                return OpTime(call, max(compute, memory), "convolution" if compute >= memory else "memory")
        if call.gemms:
            compute = sum(self.gemm_s(gemm) for gemm in call.gemms)
            return OpTime(call, max(compute, memory), "matmul" if compute >= memory else "memory")
        measured = self._op_rates.get(call.name) or self._op_rates.get(_base_name(call.name))
        if measured is not None and call.largest > 0:
            piece = call.largest / call.parts
            compute = call.parts * piece / measured.at(piece)
            return OpTime(call, max(compute, memory), "op rate" if compute >= memory else "memory")
        if _base_name(call.name) in _TRANSCENDENTAL:
            compute = sum(self.elementwise_s(call.elements / call.parts) for _ in range(call.parts))
            if compute > memory:
                return OpTime(call, compute, "elementwise")
        return OpTime(call, memory, "memory")


def predict_ops(
    calls: Sequence[OpCall], rates: KernelRates, *, precision: str = "fp32", device_name: str = ""
) -> GraphPrediction:
    """Price every recorded op with `rates` (one precision of a measured profile)."""
    model = KernelModel(rates)
    return GraphPrediction(tuple(model.price(call) for call in calls), precision, device_name)


def _nearest_rate(points: Sequence[tuple[float, float, float, float]], shape: tuple[float, float, float]) -> float:
    """A weighted geometric mean of the `_NEAREST` points' rates nearest `shape`, weights 1 / distance² in log2
    of each dimension (exact at a measured shape)."""
    here = tuple(math.log2(max(x, 1)) for x in shape)
    scored = sorted((sum((a - b) ** 2 for a, b in zip(here, point[:3])), point[3]) for point in points)
    nearest = scored[:_NEAREST]
    if nearest[0][0] < 1e-12:
        return math.exp(nearest[0][1])
    weights = [1.0 / squared for squared, _ in nearest]
    return math.exp(sum(w * value for w, (_, value) in zip(weights, nearest)) / sum(weights))


def _base_name(name: str) -> str:
    """The op without its in-place mark (`tanh_` is `tanh`)."""
    return name.rstrip("_")


# --------------------------------------------------------------------------------------------- recording


def _tensors(value: Any) -> list[Any]:
    import torch
    from torch.utils._pytree import tree_leaves

    return [leaf for leaf in tree_leaves(value) if isinstance(leaf, torch.Tensor)]


def _nbytes(tensors: Sequence[Any]) -> float:
    return float(sum(t.numel() * t.element_size() for t in tensors))


def _size(shape: Sequence[int]) -> int:
    return math.prod(int(x) for x in shape)


def op_gemms(name: str, args: Sequence[Any], out: Any) -> tuple[Gemm, ...]:
    """The GEMMs of one aten op (none for an op that is not a product)."""
    if name in ("mm", "_int_mm", "_scaled_mm"):
        (m, k), n = args[0].shape, args[1].shape[1]
        return (Gemm(m, n, k),)
    if name == "addmm":
        (m, k), n = args[1].shape, args[2].shape[1]
        return (Gemm(m, n, k),)
    if name in ("bmm", "baddbmm"):
        a, b = (args[0], args[1]) if name == "bmm" else (args[1], args[2])
        batch, m, k = a.shape
        return (Gemm(m, b.shape[2], k, batch),)
    if name == "convolution":
        source, weight, groups = args[0], args[1], int(args[8])
        transposed = bool(args[6])
        output = out
        kernel = _size(weight.shape[2:])
        if transposed:  # the gradient of a convolution: input positions x (out channels), K = in channels x kernel
            in_channels, out_channels = weight.shape[0], weight.shape[1] * groups
            return (
                Gemm(
                    source.shape[0] * _size(source.shape[2:]),
                    out_channels // groups * kernel,
                    in_channels // groups,
                    groups,
                ),
            )
        in_channels, out_channels = weight.shape[1] * groups, weight.shape[0]
        return (
            Gemm(
                output.shape[0] * _size(output.shape[2:]),
                out_channels // groups,
                in_channels // groups * kernel,
                groups,
            ),
        )
    if name == "convolution_backward":
        grad_output, source, weight = args[0], args[1], args[2]
        groups, mask = int(args[9]), args[10]
        kernel = _size(weight.shape[2:])
        out_positions = grad_output.shape[0] * _size(grad_output.shape[2:])
        in_positions = source.shape[0] * _size(source.shape[2:])
        cin_g, cout_g = weight.shape[1], weight.shape[0] // groups
        gemms = []
        if mask[0]:
            gemms.append(Gemm(in_positions, cin_g, cout_g * kernel, groups))
        if mask[1]:
            gemms.append(Gemm(cout_g, cin_g * kernel, out_positions, groups))
        return tuple(gemms)
    if "scaled_dot_product" in name or "flash_attention" in name or "efficient_attention" in name:
        query, key, value = args[0], args[1], args[2]
        *lead, length, depth = query.shape
        batch, source_length, value_depth = _size(lead), key.shape[-2], value.shape[-1]
        products = (Gemm(length, source_length, depth, batch), Gemm(length, value_depth, source_length, batch))
        if "backward" in name:  # recompute the scores, then the gradients of q, k, v and the probabilities
            return products + (
                Gemm(length, depth, source_length, batch),
                Gemm(source_length, depth, length, batch),
                Gemm(source_length, value_depth, length, batch),
            )
        return products
    return ()


def op_convolution(name: str, args: Sequence[Any], out: Any) -> Convolution | None:
    """The shape a convolution op runs at, for the profile's convolution points: None for other ops and for
    transposed convolutions (priced as their GEMMs)."""
    if name == "convolution" and not bool(args[6]):
        weight, groups = args[1], int(args[8])
        passes: tuple[str, ...] = ("forward",)
        positions = out.shape[0] * _size(out.shape[2:])
    elif name == "convolution_backward" and not bool(args[7]):
        grad_output, weight, groups, mask = args[0], args[2], int(args[9]), args[10]
        passes = tuple(p for p, wanted in zip(("input_grad", "weight_grad"), mask[:2]) if wanted)
        positions = grad_output.shape[0] * _size(grad_output.shape[2:])
        if not passes:
            return None
    else:
        return None
    cin_g, cout_g = int(weight.shape[1]), int(weight.shape[0]) // groups
    return Convolution(
        int(positions), cout_g, cin_g * _size(weight.shape[2:]), groups, groups > 1 and cin_g == 1, passes
    )


class _Recorder:
    """The dispatch mode and module tracker that record each op of a phase."""

    def __init__(self) -> None:
        self.calls: list[OpCall] = []
        self.phase = "forward"

    def record(self, func: Any, args: tuple, kwargs: Mapping[str, Any], out: Any, layer: str) -> None:
        name = getattr(func.overloadpacket, "__name__", str(func))
        inputs = _tensors((args, kwargs))
        outputs = _tensors(out)
        if getattr(func, "is_view", False):
            self.calls.append(OpCall(name, self.phase, layer, (), 0.0, 0.0, view=True))
            return
        written = _nbytes(outputs)
        if name.endswith("_") and not outputs and args:  # an in-place op that returns nothing writes its first argument
            written = _nbytes(_tensors(args[0]))
        parts = len(_tensors(args[0])) if name.startswith("_foreach") and args else 1
        first_out = out if not isinstance(out, (tuple, list)) else (out[0] if out else None)
        gemms = op_gemms(name, args, first_out)
        elements = float(sum(t.numel() for t in outputs)) or float(sum(t.numel() for t in _tensors(args[:1])))
        largest = float(max((t.numel() for t in inputs + outputs), default=0))
        self.calls.append(
            OpCall(
                name,
                self.phase,
                layer,
                gemms,
                _nbytes(inputs) + written,
                elements,
                parts=max(parts, 1),
                convolution=op_convolution(name, args, first_out),
                largest=largest,
            )
        )


def trace_ops(phases: Sequence[tuple[str, Callable[[], object]]], module: Any = None) -> tuple[OpCall, ...]:
    """Run each (phase, function) in turn and record every op torch dispatches, with the innermost module of
    `module` it ran in (forward and backward)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.module_tracker import ModuleTracker

    recorder = _Recorder()
    tracker = ModuleTracker()

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            parents = [p for p in tracker.parents if p != "Global"]
            layer = max(parents, key=lambda p: (p.count("."), len(p)), default="")
            recorder.record(func, args, kwargs, out, layer)
            return out

    unknown = [phase for phase, _ in phases if phase not in PHASES]
    if unknown:
        raise ValueError(f"unknown phase {unknown[0]!r}: use {', '.join(PHASES)}")
    with tracker:  # one tracker over every phase: the backward finds the modules the forward entered
        for phase, run in phases:
            recorder.phase = phase
            with _Mode():
                run()
    return tuple(recorder.calls)


def time_ops(
    run: Callable[[], object], clock: Callable[[], float], sync: Callable[[], None] = lambda: None
) -> list[tuple[OpCall, float]]:
    """Run `run` once with every op torch dispatches recorded (as trace_ops does, phase "forward") and timed
    alone by `clock`, the device synchronised before and after it: (op, seconds) in the order they ran."""
    from torch.utils._python_dispatch import TorchDispatchMode

    recorder = _Recorder()
    seconds: list[float] = []

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            sync()
            start = clock()
            out = func(*args, **kwargs)
            sync()
            seconds.append(clock() - start)
            recorder.record(func, args, kwargs, out, "")
            return out

    with _Mode():
        run()
    return list(zip(recorder.calls, seconds))
