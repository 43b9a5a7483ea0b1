"""A device's figures in one room: dense peaks per precision, memory, memory bandwidth, links and the
size-dependent profile, each with where it came from. `resolve_device` is the one way from a name to them;
calibration, plan, infer, the meter, bench and predict all read devices through it.

The package: `resolve` (the resolver) over `figures` (the record and the measurements that replace datasheet
figures) over `measured` (the kernel rates `bench --save` measured on this machine) over `profile` (the
step-time model's rates, read from a profile file) over `curve` (a figure that depends on a size) and `cpu`
(what this machine's CPU is, and the peak its cores, clock and SIMD flags give).
"""

from ..units import GB  # re-exported: links and bandwidths are decimal GB/s
from .cpu import (
    BF16_FLOP_PER_CYCLE,
    FP32_FLOP_PER_CYCLE,
    CpuInfo,
    available_cpus,
    cpu_peak_estimate,
    flop_per_cycle,
    parse_cpuinfo,
    read_cpu_info,
)
from .curve import BETWEEN, Curve
from .figures import (
    ASSUMED_INTER_NODE_GBPS,
    ASSUMED_INTER_NODE_SOURCE,
    Device,
    Figure,
    FigureOrigin,
    LinkMeasurement,
    MatmulMeasurement,
)
from .measured import MEASURED_SCOPES, STEP_PHASES, KernelRates, ProfileCalibration, parse_measured_profile
from .profile import (
    COLLECTIVES,
    KERNEL_TIMES,
    MB,
    SCOPES,
    DeviceProfile,
    Network,
    Rate,
    default_profiles_text,
    device_profile,
    is_profile_file,
    load_profiles,
    profile_for,
    profiled_device,
    with_bus_bandwidth,
)
from .resolve import SHIPPED_PROFILES, find_accelerator, resolve_device, with_network

__all__ = [
    "BF16_FLOP_PER_CYCLE",
    "CpuInfo",
    "FP32_FLOP_PER_CYCLE",
    "available_cpus",
    "cpu_peak_estimate",
    "flop_per_cycle",
    "parse_cpuinfo",
    "read_cpu_info",
    "ASSUMED_INTER_NODE_GBPS",
    "ASSUMED_INTER_NODE_SOURCE",
    "BETWEEN",
    "COLLECTIVES",
    "Curve",
    "Device",
    "DeviceProfile",
    "Figure",
    "FigureOrigin",
    "GB",
    "KERNEL_TIMES",
    "KernelRates",
    "LinkMeasurement",
    "MB",
    "MEASURED_SCOPES",
    "MatmulMeasurement",
    "Network",
    "ProfileCalibration",
    "Rate",
    "SCOPES",
    "SHIPPED_PROFILES",
    "STEP_PHASES",
    "default_profiles_text",
    "device_profile",
    "find_accelerator",
    "is_profile_file",
    "load_profiles",
    "parse_measured_profile",
    "profile_for",
    "profiled_device",
    "resolve_device",
    "with_bus_bandwidth",
    "with_network",
]
