"""The GPUs a plan runs on: what one sustains, its memory, the links between them, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass

from ..compute import Throughput, check_price, check_pue
from ..device import ASSUMED_INTER_NODE_GBPS as DEFAULT_INTER_NODE_GBPS
from ..device import DeviceProfile
from ..emissions import GridIntensity
from ..errors import UsageError
from ..units import GIB  # memory is binary: an "80 GB" GPU holds 80 GiB
from .checks import positive, positive_int

DEFAULT_GPUS_PER_NODE = 8
# Set aside on every GPU unless --memory-reserve says otherwise: the CUDA context and the cuBLAS/NCCL workspaces
# (about 1 GiB on an A100/H100 with NCCL initialised), plus a share for the caching allocator's fragmentation.
RESERVE_CONTEXT_GIB = 1.0
RESERVE_FRAGMENTATION = 0.05


def default_reserve_bytes(memory_bytes: float) -> float:
    """RESERVE_CONTEXT_GIB + RESERVE_FRAGMENTATION of the GPU's memory: 1 + 4 = 5 GiB of an 80 GiB GPU."""
    return RESERVE_CONTEXT_GIB * GIB + RESERVE_FRAGMENTATION * memory_bytes


@dataclass(frozen=True)
class Bandwidth:
    """An achievable bus bandwidth per GPU in GB/s (nccl-tests' busbw), and where the figure came from."""

    gbps: float
    origin: str

    def __post_init__(self) -> None:
        positive(self.gbps, "bandwidth (GB/s)")


@dataclass(frozen=True)
class Fleet:
    """The GPUs: what one sustains while computing, its memory, how they are wired, what they cost."""

    throughput: Throughput
    gpu_memory_bytes: float
    memory_origin: str = ""
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE
    intra_node: Bandwidth | None = None
    inter_node: Bandwidth = Bandwidth(DEFAULT_INTER_NODE_GBPS, "assumed")
    tdp_w: float | None = None
    pue: float = 1.0
    price_per_gpu_hour: float | None = None
    notes: tuple[str, ...] = ()  # where the fleet's figures came from, printed with the assumptions
    memory_reserve_bytes: float = 0.0  # set aside per GPU (CUDA context, fragmentation): not for the model
    reserve_origin: str = ""
    bf16_throughput: Throughput | None = None  # fp8 training: what the ops that stay in bf16 run at (plan/fp8.py)
    # the step-time model's rates (flopcalc.device's profile); None: compute at peak x utilization (`--utilization`)
    profile: DeviceProfile | None = None
    timing_notes: tuple[str, ...] = ()  # how the step is timed: a profile built from the datasheet, --utilization
    grid: GridIntensity | None = None  # the grid's carbon intensity, for emissions (--grid-intensity, --region)

    def __post_init__(self) -> None:
        positive(self.gpu_memory_bytes, "GPU memory")
        if not 0 <= self.memory_reserve_bytes < self.gpu_memory_bytes:
            raise UsageError(
                f"the memory reserve ({self.memory_reserve_bytes / GIB:.4g} GiB) must be >= 0 and less "
                f"than the GPU's memory ({self.gpu_memory_bytes / GIB:.4g} GiB)",
                "give a smaller --memory-reserve GiB (0 sets nothing aside)",
            )
        positive_int(self.gpus_per_node, "--gpus-per-node")
        check_pue(self.pue)
        check_price(self.price_per_gpu_hour)

    @property
    def usable_memory_bytes(self) -> float:
        """What the model may take of each GPU: its memory less the reserve."""
        return self.gpu_memory_bytes - self.memory_reserve_bytes

    def link(self, group: int, stride: int, num_gpus: int, what: str) -> Bandwidth:
        """The bandwidth of a group of `group` GPUs whose ranks are `stride` apart, in a job of `num_gpus`:
        intra-node when every such group sits inside one node (ranks fill nodes in order), else inter-node."""
        span = group * stride
        if num_gpus <= self.gpus_per_node or (span <= self.gpus_per_node and self.gpus_per_node % span == 0):
            if self.intra_node is None:
                raise UsageError(
                    f"{what} runs inside a node, and the catalogue has no intra-node link figure for "
                    f"{self.throughput.gpu or 'this GPU'}",
                    "give --intra-node-gbps (nccl-tests busbw, GB/s)",
                )
            return self.intra_node
        return self.inter_node
