"""The roofline of one layer and of one pass: a layer's time is at least max(FLOPs / peak, bytes / bandwidth),
a pass's the sum of its layers' (nothing fused or overlapped across layers). On a device profile a layer is
one kernel instead, timed by flopcalc.predict at its own size: its multiply-add FLOPs at the matmul curve, the
rest at the vector one, its bytes at the memory curve, combined by the profile's kernel_time rule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

from ..counting.report import MULTIPLY_ADD_CATEGORIES, CountReport
from ..counting.traffic import LayerTraffic, TrafficReport
from ..device import DeviceProfile
from ..predict import Op, kernel_seconds
from .hardware import Hardware
from .quantisation import BYTES_PER_ELEMENT, Precisions, stored_bytes

LOWER_BOUNDS = (
    "time bounds are lower bounds: each layer at 100% of the dense peak and of the memory bandwidth, "
    "no kernel launch overhead, nothing fused or overlapped across layers"
)


def predicted_note(profile: DeviceProfile, origin: str) -> str:
    """What the times are on a device profile: predictions, and what they leave out."""
    return (
        f"times are predictions on the {profile.device} device profile from {origin}: each layer one kernel, "
        "its multiply-add FLOPs at the matmul efficiency of their size, other FLOPs at the vector rate, its "
        f"bytes at the memory bandwidth achieved at their size, {'added' if profile.kernel_time == 'sum' else 'the slower of the two'}; "
        "no kernel launch overhead, nothing fused or overlapped across layers"
    )


# The largest batch searched for where a pass turns compute-bound.
LARGEST_BATCH = 1 << 24


@dataclass(frozen=True)
class LayerBound:
    """One layer (a module's own ops) of one pass on the hardware: FLOPs, bytes by kind (weights: its parameters
    at the weight dtype and its buffers at theirs), and its roofline bound."""

    name: str
    type: str
    flops: float
    weight_bytes: float
    activation_bytes: float
    kv_cache_bytes: float
    other_bytes: float
    compute_s: float  # FLOPs / peak (on a profile: at the rates achieved at their size)
    memory_s: float  # bytes / bandwidth (on a profile: at the bandwidth achieved at their size)
    kernel_time: str = "max"  # "max": the slower of the two (a roofline); "sum": both (a profile's rule)
    matmul_flops: float = 0.0  # the multiply-add FLOPs among `flops` (a profile prices them at the matmul curve)
    profile: DeviceProfile | None = field(default=None, repr=False, compare=False)  # None: a roofline bound

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes + self.kv_cache_bytes + self.other_bytes

    @property
    def time_s(self) -> float:
        return self.compute_s + self.memory_s if self.kernel_time == "sum" else max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved (None for a layer that moves nothing)."""
        return self.flops / self.bytes if self.bytes else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "flops": whole(self.flops),
            "bytes": whole_bytes(self.bytes),
            "bytes_by_kind": {
                "weights": whole_bytes(self.weight_bytes),
                "activations": whole_bytes(self.activation_bytes),
                "kv_cache": whole_bytes(self.kv_cache_bytes),
                "other": whole_bytes(self.other_bytes),
            },
            "intensity": self.intensity,
            "bound": self.bound,
            "time_s": self.time_s,
        }


class LayersSum:
    """A pass's figure that is the sum of the same figure of each of its layers (read-only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.figure = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> LayersSum: ...

    @overload
    def __get__(self, instance: PassBound, owner: type | None = None) -> float: ...

    def __get__(self, instance: PassBound | None, owner: type | None = None) -> LayersSum | float:
        if instance is None:  # read on the class: the descriptor itself
            return self
        total: float = sum(getattr(layer, self.figure) for layer in instance.layers)
        return total


@dataclass(frozen=True)
class PassBound:
    """A forward pass as the sum of its layers' bounds."""

    layers: tuple[LayerBound, ...]
    flops = LayersSum()
    bytes = LayersSum()
    weight_bytes = LayersSum()
    time_s = LayersSum()

    @property
    def compute_bound_s(self) -> float:
        return sum(layer.time_s for layer in self.layers if layer.bound == "compute")

    @property
    def bound(self) -> str:
        return dominant_bound(self.compute_bound_s, self.time_s - self.compute_bound_s)

    @property
    def activation_working_set(self) -> float:
        """The largest activations one layer reads and writes: what must be resident at once, at the least."""
        return max((layer.activation_bytes for layer in self.layers), default=0.0)

    def scaled(self, factor: float) -> PassBound:
        """The same pass with `factor` times the batch: FLOPs and every byte but the weights' grow with it."""
        return PassBound(tuple(scale_layer(layer, factor) for layer in self.layers))


def dominant_bound(compute_s: float, memory_s: float) -> str:
    """A pass is compute-bound when its compute-bound layers take at least half of its time."""
    return "compute" if compute_s >= memory_s else "memory"


def profile_seconds(profile: DeviceProfile, matmul_flops: float, flops: float, nbytes: float) -> tuple[float, float]:
    """A layer's arithmetic and memory seconds on `profile` as one kernel: its multiply-add FLOPs at the matmul
    curve and the rest at the vector one (each at its size), its bytes at the memory curve."""
    gemm, _ = kernel_seconds(Op("multiply-adds", "gemm", matmul_flops, 0.0), profile)
    vector, memory = kernel_seconds(Op("the rest", "memory", flops - matmul_flops, nbytes), profile)
    return gemm + vector, memory


def scale_layer(layer: LayerBound, factor: float) -> LayerBound:
    grown = replace(layer, **{field: getattr(layer, field) * factor for field in _GROWN_FIELDS})
    if layer.profile is not None:  # the rates depend on the size: priced again at the grown one
        compute_s, memory_s = profile_seconds(layer.profile, grown.matmul_flops, grown.flops, grown.bytes)
        return replace(grown, compute_s=compute_s, memory_s=memory_s)
    per_flop = layer.compute_s / layer.flops if layer.flops else 0.0
    per_byte = layer.memory_s / layer.bytes if layer.bytes else 0.0
    return replace(grown, compute_s=grown.flops * per_flop, memory_s=grown.bytes * per_byte)


# what grows with the work (a roofline layer's matmul_flops is 0, so scaling it there changes nothing)
_GROWN_FIELDS = ("flops", "matmul_flops", "activation_bytes", "kv_cache_bytes", "other_bytes")


def whole(value: float) -> int | float:
    """A count as an int when it is one (a per-token figure of a batch may not be)."""
    rounded = round(value)
    return rounded if abs(value - rounded) < 1e-6 * max(1.0, abs(value)) else value


def whole_bytes(value: float | None) -> int | None:
    """Bytes in whole bytes, rounded up (int4 weights and their half-byte zero points pack into bytes)."""
    return None if value is None else math.ceil(whole(value))


def own_flops(report: CountReport, categories: frozenset[str] | None = None) -> dict[str, int]:
    """Each module's own forward FLOPs (its inclusive count less its children's), by module path; only those of
    `categories` when given."""

    def forward(layer: Any) -> int:
        if categories is None:
            return int(layer.forward)
        return sum(flops for category, flops in layer.forward_by_category.items() if category in categories)

    own = {layer.name: forward(layer) for layer in report.layers}
    for layer in report.layers:
        if layer.name:
            parent = layer.name.rpartition(".")[0]
            if parent in own:
                own[parent] -= forward(layer)
    return own


class Pricer:
    """Prices a counted pass on the hardware at the serving precisions."""

    def __init__(
        self,
        hardware: Hardware,
        precisions: Precisions,
        param_shapes: Mapping[str, Sequence[int]],
        sparse_2_4: frozenset[str] = frozenset(),
    ):
        self.hardware = hardware
        self.activation = BYTES_PER_ELEMENT[precisions.activations]
        self.kv = BYTES_PER_ELEMENT[precisions.kv_cache]
        self.per_weight = {
            name: (
                stored_bytes(name, shape, precisions.weights, precisions.activations, sparse_2_4) / math.prod(shape)
                if math.prod(shape)
                else 0.0
            )
            for name, shape in param_shapes.items()
        }

    def layer(self, traffic: LayerTraffic, flops: float, type_name: str, matmul_flops: float = 0.0) -> LayerBound:
        weights = sum(elements * self.per_weight[name] for name, elements in traffic.weights.items())
        weights += traffic.buffer_bytes
        activations = (traffic.activations_read + traffic.activations_written) * self.activation
        kv = (traffic.cache_read + traffic.cache_written) * self.kv
        moved = weights + activations + kv + traffic.other_bytes
        profile = self.hardware.profile
        if profile is None:  # a roofline: at the peak and the bandwidth, the slower of the two
            compute_s, memory_s = flops / self.hardware.peak_flops, moved / self.hardware.bandwidth
            kernel_time, matmul_flops = "max", 0.0
        else:  # one kernel on the profile, each part at its size's rate, combined by the profile's rule
            compute_s, memory_s = profile_seconds(profile, matmul_flops, flops, moved)
            kernel_time = profile.kernel_time
        return LayerBound(
            traffic.name,
            type_name,
            flops,
            weights,
            activations,
            kv,
            float(traffic.other_bytes),
            compute_s,
            memory_s,
            kernel_time,
            matmul_flops,
            profile,
        )

    def price(self, report: CountReport, traffic: TrafficReport) -> PassBound:
        """Layers in the order they first ran; a layer that computes nothing and moves nothing is left out."""
        flops = own_flops(report)
        matmuls = own_flops(report, MULTIPLY_ADD_CATEGORIES)
        types = {layer.name: layer.type for layer in report.layers}
        layers = (
            self.layer(t, flops.get(t.name, 0), types.get(t.name, ""), matmuls.get(t.name, 0)) for t in traffic.layers
        )
        return PassBound(tuple(layer for layer in layers if layer.flops or layer.bytes))


def compute_bound_from(counted: PassBound, batch: int) -> int | None:
    """The smallest batch at which the pass is compute-bound, with FLOPs and every byte but the weights growing
    in proportion to the batch from the counted one; None if not below 2**24."""

    def compute_bound(size: int) -> bool:
        return counted.scaled(size / batch).bound == "compute"

    if compute_bound(1):
        return 1
    high = 2
    while not compute_bound(high):
        if high >= LARGEST_BATCH:
            return None
        high *= 2
    low = high // 2  # memory-bound at low, compute-bound at high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if compute_bound(middle) else (middle, high)
    return high
