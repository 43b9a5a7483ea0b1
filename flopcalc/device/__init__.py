"""A device's figures in one room: dense peaks per precision, memory, memory bandwidth, links and the
size-dependent profile, each with where it came from. `resolve_device` is the one way from a name to them;
calibration, plan, infer, the meter, bench and predict all read devices through it.

The package: `resolve` (the resolver) over `figures` (the record and the measurements that replace datasheet
figures) over `profile` (the step-time model's rates, read from a profile file) over `curve` (a figure that
depends on a size).
"""

from ..units import GB  # re-exported: links and bandwidths are decimal GB/s
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
    "ASSUMED_INTER_NODE_GBPS", "ASSUMED_INTER_NODE_SOURCE", "BETWEEN", "COLLECTIVES", "Curve", "Device",
    "DeviceProfile", "Figure", "FigureOrigin", "GB", "KERNEL_TIMES", "LinkMeasurement", "MB", "MatmulMeasurement",
    "Network", "Rate", "SCOPES", "SHIPPED_PROFILES", "default_profiles_text", "device_profile", "find_accelerator",
    "is_profile_file", "load_profiles", "profile_for", "profiled_device", "resolve_device", "with_bus_bandwidth",
    "with_network",
]
