"""A profile for a catalogue GPU nobody has measured: its datasheet's peaks and bandwidths at the efficiencies of a
published, measured profile, each source line saying the curve was borrowed, so a plan predicts instead of failing.
"""

from __future__ import annotations

from dataclasses import replace

from ..device import Curve, Device, DeviceProfile, Network, Rate, load_profiles
from ..units import GB

REFERENCE_DEVICE = "A100-SXM4-80GB"  # the shipped profile that `flopcalc validate` checks against measured runs


def _borrowed(curve: Curve, gpu: str) -> Curve:
    return Curve(
        curve.points,
        f"{curve.source}; borrowed from the {REFERENCE_DEVICE} profile: {gpu} is not measured",
        curve.between,
    )


def _rate(reference: Rate, peak: float, peak_source: str, gpu: str) -> Rate:
    return Rate(peak, peak_source, _borrowed(reference.efficiency, gpu), reference.size_unit)


def datasheet_profile(device: Device, *, gpus_per_node: int = 8) -> tuple[DeviceProfile | None, str]:
    """The profile of `device` at its precision from the figures `flopcalc.device` resolved (datasheet peak,
    memory bandwidth and links), and one line saying how it was built (or why it could not be: no memory
    bandwidth known)."""
    precision = device.precision
    if device.memory_bandwidth is None:
        return None, f"the catalogue has no memory bandwidth for {device.id}"
    reference = load_profiles(precision="fp16")[REFERENCE_DEVICE]
    peak = device.peak.value
    # datasheets rarely give the 16-bit non-tensor rate elementwise kernels run at: the reference's ratio to the
    # tensor-core peak (78/312 on the A100) stands in for it
    ratio = reference.vector.peak / reference.matmul.peak
    vector_source = f"{device.peak.source}, {device.id} x {REFERENCE_DEVICE}'s vector/matmul ratio {ratio:.3g}"
    networks = {}
    if device.intra_node is not None:
        intra = reference.network("intra_node")
        networks["intra_node"] = Network(
            "intra_node",
            gpus_per_node,
            device.intra_node.value * GB,
            intra.latency_s,
            f"{device.intra_node.source}; efficiency and latency borrowed from the {REFERENCE_DEVICE} profile",
            {name: _borrowed(curve, device.id) for name, curve in intra.bus_efficiency.items()},
        )
    inter = reference.network("inter_node")
    networks["inter_node"] = replace(
        inter,
        bandwidth=device.inter_node.value * GB,
        source=f"{device.inter_node.source}; efficiency and latency borrowed from the {REFERENCE_DEVICE} profile",
        bus_efficiency={name: _borrowed(curve, device.id) for name, curve in inter.bus_efficiency.items()},
    )
    profile = DeviceProfile(
        device.id,
        f"{device.id} from its datasheet, at the {REFERENCE_DEVICE} profile's efficiencies",
        _rate(reference.matmul, peak, f"{device.peak.source}, {device.id}", device.id),
        _rate(reference.vector, peak * ratio, vector_source, device.id),
        _rate(
            reference.memory,
            device.memory_bandwidth.value,
            f"{device.memory_bandwidth.source}: memory bandwidth",
            device.id,
        ),
        networks,
        (precision,),
        reference.kernel_time,
        f"{reference.kernel_time_source}; borrowed from the {REFERENCE_DEVICE} profile",
    )
    return profile, (
        f"no measured profile for {device.id}: its datasheet peaks and bandwidths at the "
        f"{REFERENCE_DEVICE} profile's published efficiencies (matmul by GEMM size, memory by bytes "
        "moved, collectives by message size); a prediction, not a measurement"
    )
