"""The roofline of one layer and of one pass: a layer's time is at least max(FLOPs / peak, bytes / bandwidth),
a pass's the sum of its layers' (nothing fused or overlapped across layers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from ..counting.report import CountReport
from ..counting.traffic import LayerTraffic, TrafficReport
from .hardware import Hardware
from .quantisation import BYTES_PER_ELEMENT, Precisions, stored_bytes

LOWER_BOUNDS = ("time bounds are lower bounds: each layer at 100% of the dense peak and of the memory bandwidth, "
                "no kernel launch overhead, nothing fused or overlapped across layers")
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
    compute_s: float  # FLOPs / peak
    memory_s: float  # bytes / bandwidth

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes + self.kv_cache_bytes + self.other_bytes

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s)

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
            "bytes_by_kind": {"weights": whole_bytes(self.weight_bytes),
                              "activations": whole_bytes(self.activation_bytes),
                              "kv_cache": whole_bytes(self.kv_cache_bytes), "other": whole_bytes(self.other_bytes)},
            "intensity": self.intensity,
            "bound": self.bound,
            "time_s": self.time_s,
        }


@dataclass(frozen=True)
class PassBound:
    """A forward pass as the sum of its layers' bounds."""

    layers: tuple[LayerBound, ...]

    @property
    def flops(self) -> float:
        return sum(layer.flops for layer in self.layers)

    @property
    def bytes(self) -> float:
        return sum(layer.bytes for layer in self.layers)

    @property
    def weight_bytes(self) -> float:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def time_s(self) -> float:
        return sum(layer.time_s for layer in self.layers)

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

    def scaled(self, factor: float) -> "PassBound":
        """The same pass with `factor` times the batch: FLOPs and every byte but the weights' grow with it."""
        return PassBound(tuple(scale_layer(layer, factor) for layer in self.layers))


def dominant_bound(compute_s: float, memory_s: float) -> str:
    """A pass is compute-bound when its compute-bound layers take at least half of its time."""
    return "compute" if compute_s >= memory_s else "memory"


def scale_layer(layer: LayerBound, factor: float) -> LayerBound:
    per_flop = layer.compute_s / layer.flops if layer.flops else 0.0
    per_byte = layer.memory_s / layer.bytes if layer.bytes else 0.0
    grown = replace(layer, flops=layer.flops * factor, activation_bytes=layer.activation_bytes * factor,
                    kv_cache_bytes=layer.kv_cache_bytes * factor, other_bytes=layer.other_bytes * factor)
    return replace(grown, compute_s=grown.flops * per_flop, memory_s=grown.bytes * per_byte)


def whole(value: float) -> int | float:
    """A count as an int when it is one (a per-token figure of a batch may not be)."""
    rounded = round(value)
    return rounded if abs(value - rounded) < 1e-6 * max(1.0, abs(value)) else value


def whole_bytes(value: float | None) -> int | None:
    """Bytes in whole bytes, rounded up (int4 weights and their half-byte zero points pack into bytes)."""
    return None if value is None else math.ceil(whole(value))


def own_flops(report: CountReport) -> dict[str, int]:
    """Each module's own forward FLOPs (its inclusive count less its children's), by module path."""
    own = {layer.name: layer.forward for layer in report.layers}
    for layer in report.layers:
        if layer.name:
            parent = layer.name.rpartition(".")[0]
            if parent in own:
                own[parent] -= layer.forward
    return own


class Pricer:
    """Prices a counted pass on the hardware at the serving precisions."""

    def __init__(self, hardware: Hardware, precisions: Precisions, param_shapes: Mapping[str, Sequence[int]],
                 sparse_2_4: frozenset[str] = frozenset()):
        self.hardware = hardware
        self.activation = BYTES_PER_ELEMENT[precisions.activations]
        self.kv = BYTES_PER_ELEMENT[precisions.kv_cache]
        self.per_weight = {
            name: (stored_bytes(name, shape, precisions.weights, precisions.activations, sparse_2_4)
                   / math.prod(shape) if math.prod(shape) else 0.0)
            for name, shape in param_shapes.items()
        }

    def layer(self, traffic: LayerTraffic, flops: float, type_name: str) -> LayerBound:
        weights = sum(elements * self.per_weight[name] for name, elements in traffic.weights.items())
        weights += traffic.buffer_bytes
        activations = (traffic.activations_read + traffic.activations_written) * self.activation
        kv = (traffic.cache_read + traffic.cache_written) * self.kv
        moved = weights + activations + kv + traffic.other_bytes
        return LayerBound(traffic.name, type_name, flops, weights, activations, kv, float(traffic.other_bytes),
                          flops / self.hardware.peak_flops, moved / self.hardware.bandwidth)

    def price(self, report: CountReport, traffic: TrafficReport) -> PassBound:
        """Layers in the order they first ran; a layer that computes nothing and moves nothing is left out."""
        flops = own_flops(report)
        types = {layer.name: layer.type for layer in report.layers}
        layers = (self.layer(t, flops.get(t.name, 0), types.get(t.name, "")) for t in traffic.layers)
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
