"""A profile for a catalogue GPU nobody has measured: its datasheet's peaks and bandwidths at the efficiencies of a
published, measured profile, each source line saying the curve was borrowed, so a plan predicts instead of failing.
"""

from __future__ import annotations

from dataclasses import replace

from ..catalog import GpuSpec
from .curve import Curve
from .profile import GB, DeviceProfile, Network, Rate, load_profiles

REFERENCE_DEVICE = "A100-SXM4-80GB"  # the shipped profile that `flopcalc validate` checks against measured runs
DATASHEET_INTER_NODE_GBPS = 25.0  # one 200 Gb/s InfiniBand HDR NIC per GPU, plan's assumed inter-node link


def _borrowed(curve: Curve, gpu: str) -> Curve:
    return Curve(curve.points, f"{curve.source}; borrowed from the {REFERENCE_DEVICE} profile: {gpu} is not "
                 "measured", curve.between)


def _rate(reference: Rate, peak: float, peak_source: str, gpu: str) -> Rate:
    return Rate(peak, peak_source, _borrowed(reference.efficiency, gpu), reference.size_unit)


def datasheet_profile(gpu: GpuSpec, precision: str, *, gpus_per_node: int = 8) -> tuple[DeviceProfile | None, str]:
    """The profile of `gpu` from its catalogue entry, and one line saying how it was built (or why it could not
    be: no peak for `precision`, or no memory bandwidth in the catalogue)."""
    if precision not in gpu.peak_tflops:
        return None, f"the catalogue has no {precision} peak for {gpu.id}"
    if not gpu.memory_bandwidth_gbps:
        return None, f"the catalogue has no memory bandwidth for {gpu.id}"
    reference = load_profiles(precision="fp16")[REFERENCE_DEVICE]
    peak = gpu.peak_tflops[precision] * 1e12
    # datasheets rarely give the 16-bit non-tensor rate elementwise kernels run at: the reference's ratio to the
    # tensor-core peak (78/312 on the A100) stands in for it
    ratio = reference.vector.peak / reference.matmul.peak
    vector_peak = peak * ratio
    vector_source = f"catalogue, {gpu.id}: dense {precision} peak x {REFERENCE_DEVICE}'s vector/matmul ratio {ratio:.3g}"
    networks = {}
    if gpu.intra_node_link is not None:
        link, intra = gpu.intra_node_link, reference.network("intra_node")
        networks["intra_node"] = Network(
            "intra_node", gpus_per_node, link.per_direction_gbps * GB, intra.latency_s,
            f"catalogue, {gpu.id}: {link.describe()}; efficiency and latency borrowed from the {REFERENCE_DEVICE} "
            "profile", {name: _borrowed(curve, gpu.id) for name, curve in intra.bus_efficiency.items()})
    inter = reference.network("inter_node")
    networks["inter_node"] = replace(
        inter, bandwidth=DATASHEET_INTER_NODE_GBPS * GB,
        source="assumed: one 200 Gb/s InfiniBand HDR NIC per GPU; efficiency and latency borrowed from the "
               f"{REFERENCE_DEVICE} profile",
        bus_efficiency={name: _borrowed(curve, gpu.id) for name, curve in inter.bus_efficiency.items()})
    profile = DeviceProfile(
        gpu.id, f"{gpu.id} from its datasheet, at the {REFERENCE_DEVICE} profile's efficiencies",
        _rate(reference.matmul, peak, f"catalogue, {gpu.id}: dense {precision} peak", gpu.id),
        _rate(reference.vector, vector_peak, vector_source, gpu.id),
        _rate(reference.memory, gpu.memory_bandwidth_gbps * GB, f"catalogue, {gpu.id}: memory bandwidth", gpu.id),
        networks, (precision,), reference.kernel_time,
        f"{reference.kernel_time_source}; borrowed from the {REFERENCE_DEVICE} profile")
    return profile, (f"no measured profile for {gpu.id}: its datasheet peaks and bandwidths at the {REFERENCE_DEVICE} "
                     "profile's published efficiencies (matmul by GEMM size, memory by bytes moved, collectives by "
                     "message size); a prediction, not a measurement")
