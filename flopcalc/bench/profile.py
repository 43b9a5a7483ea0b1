"""A device profile: the rates a step-time prediction reads at each op's own size (docs/calibration.md).

One headline matmul figure prices a 64 x 128 x 784 GEMM like an 8192-cube; a profile instead times a ladder of
GEMM shapes (skinny and small ones included), a streaming copy at sizes from cache-resident to far past the
caches (achievable memory bandwidth), an elementwise op at several sizes, and an op that moves nothing (what
dispatching one op costs). Each point is the median of a few samples of a block of calls.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

from ..calibration import now_utc
from ..device import KernelRates, ProfileCalibration
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

    @staticmethod
    def for_device(device: str) -> "Ladder":
        if device == "cpu":
            return Ladder((8, 64, 512, 4096), (8, 64, 512, 2048), 1.1e9, (2**12, 2**16, 2**20, 2**24, 2**27),
                          (2**10, 2**14, 2**18, 2**22), 0.01)
        return Ladder((16, 256, 4096, 32768), (256, 2048, 16384), 1.2e13, (2**16, 2**20, 2**24, 2**28, 2**31),
                      (2**12, 2**16, 2**20, 2**24, 2**28), 0.005)

    def gemm_shapes(self) -> list[tuple[int, int, int]]:
        """Smallest first: a run out of time keeps the small shapes, which no headline figure stands for."""
        shapes = [(m, n, k) for m in self.gemm_m for n in self.gemm_nk for k in self.gemm_nk
                  if 2.0 * m * n * k <= self.max_gemm_flops]
        return sorted(shapes, key=lambda shape: shape[0] * shape[1] * shape[2])


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


def measure_rates(info: DeviceInfo, precision: str, *, ladder: Ladder | None = None, seconds: float | None = None,
                  clock: Callable[[], float] = time.perf_counter) -> KernelRates:
    """Time the ladder in `precision` on the device `info` describes, by `clock` (off a GPU, the kernels too).
    With `seconds`, GEMM shapes left when half of it has gone are not timed (the copy, elementwise and dispatch
    points always are)."""
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
            seconds = seconds_per_call(lambda: torch.mm(a, b), timer, target)
            matmul.append((m, n, k, 2.0 * m * n * k / seconds / 1e12))
    memory = []
    for moved in ladder.copy_bytes:  # a copy reads and writes: half the bytes moved each way
        elements = max(1, moved // 2 // torch.empty((), dtype=dtype).element_size())
        source, destination = torch.randn(elements, device=device).to(dtype), torch.empty(elements, dtype=dtype, device=device)
        seconds = seconds_per_call(lambda: destination.copy_(source), timer, target)
        memory.append((moved, moved / seconds / 1e9))
        del source, destination
    elementwise = []
    for elements in ladder.elementwise:
        x = torch.randn(elements, device=device).to(dtype)
        seconds = seconds_per_call(lambda: torch.tanh(x), timer, target)
        elementwise.append((elements, elements / seconds / 1e9))
    x = torch.randn(4, 4, device=device).to(dtype)
    view_s = seconds_per_call(lambda: x.view(16), timer, target)
    return KernelRates(tuple(matmul), tuple(memory), tuple(elementwise), view_s * 1e6,
                       eager_op_seconds(device, dtype, timer, target) * 1e6)


def eager_op_seconds(device: str, dtype, timer: Timer, target: float) -> float:
    """What an eager training step spends per op on tiny tensors: a forward and backward through a chain of
    small multiplies (Python, autograd and dispatch included), over the ops it records."""
    import torch

    from ..predict import trace_ops

    leaf = torch.randn(4, 4, device=device).to(dtype).requires_grad_()

    def chain() -> None:
        y = leaf
        for _ in range(32):
            y = y * 1.0001
        y.sum().backward()
        leaf.grad = None

    calls = [call for call in trace_ops((("forward", chain),)) if not call.view]
    return seconds_per_call(chain, timer, target) / max(len(calls), 1)


def measure_profile(info: DeviceInfo, precisions: tuple[str, ...], *, ladder: Ladder | None = None,
                    seconds: float | None = None, clock: Callable[[], float] = time.perf_counter) -> ProfileCalibration:
    """A profile of every precision in `precisions` a model's step can run in (fp8/int8 are left out), each
    in an equal share of `seconds`."""
    import torch

    previous_threads = torch.get_num_threads()
    if info.device == "cpu" and info.threads:
        torch.set_num_threads(info.threads)
    try:
        chosen = [precision for precision in precisions if precision in PROFILE_PRECISIONS]
        share = seconds / len(chosen) if seconds and chosen else None
        rates = {precision: measure_rates(info, precision, ladder=ladder, seconds=share, clock=clock)
                 for precision in chosen}
    finally:
        torch.set_num_threads(previous_threads)
    return ProfileCalibration(info.device_name, now_utc(), info.torch_version, rates, info.threads)
